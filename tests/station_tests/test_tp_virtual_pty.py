"""A test plan over a real virtual device's serial port (pty), through trayline.console's client.

The whole path a station takes, minus the hardware: a BRN404 in a virtual tray
with the test firmware flashed, its pty served by ``trayline.virtual``,
``TestFirmwareClient`` speaking JSON lines over pyserial, and the runner judging
what comes back against the plan. Faults from devices.json (``never_answers``,
``slow_console``) show up as the reasons an operator would read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trayline.console.testfw import TestFirmwareClient
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.station.measurements import Verdict
from trayline.station.testplan import TestPlan
from trayline.station.testplan_config import parse_test_plan
from trayline.station.testrunner import StepStatus, TestOutcome, run_test_plan
from trayline.virtual.factory import install_module, user_part
from trayline.virtual.serial_port import PortServer
from trayline.virtual.tray import FactoryOptions, Tray

RELEASE = "3.3.1"  # Gen 3 below 4.0: the setup-done flag is real
READINGS = {
    "vbat": {"mean": 3.95, "sd": 0.01, "unit": "V"},
    "soc": 80.5,
    "device_os": RELEASE,
    "radio.rssi": -71,
    "radio.qual": -9,
}
PLAN = parse_test_plan(
    {
        "timeout_s": 3,
        "steps": [
            {
                "name": "power",
                "kind": "measure",
                "measurements": [
                    {"name": "vbat", "unit": "V", "low": 3.6, "high": 4.3},
                    {"name": "soc", "low": 20},
                    {"name": "device_os", "regex": r"3\.\d+\.\d+"},
                ],
            },
            {
                "name": "radio",
                "kind": "run",
                "measurements": [{"name": "rssi", "low": -105}],
            },
            {"name": "setup_done", "kind": "setup_done"},
        ],
    }
)


class Line:
    """A tray of virtual BRN404s with the test firmware, their ptys served in a thread."""

    def __init__(self, folder: Path, count: int = 2) -> None:
        sku = get_sku("BRN404")
        self.tray = Tray.create(folder, sku, count, seed=11, options=FactoryOptions(RELEASE))
        image = user_part(sku.platform_id, SemVer.parse(RELEASE), test_firmware=True)
        for device_id in self.tray.device_ids():
            with self.tray.session(device_id) as device:
                install_module(device, image)
                device.boot()
            self.tray.update_record(device_id, readings=dict(READINGS))
        self.ids = self.tray.device_ids()
        self.server = PortServer(self.tray, time_scale=0)
        self.paths = self.server.open()
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def run(self, device_id: str, plan: TestPlan = PLAN) -> TestOutcome:
        with TestFirmwareClient(self.paths[device_id]) as channel:
            return run_test_plan(plan, channel, expect_device_id=device_id)

    def stop(self) -> None:
        self.server.stop.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Line]:
    served = Line(tmp_path / "tray")
    yield served
    served.stop()


def test_plan_passes_over_the_pty_and_sets_setup_done(line: Line) -> None:
    device_id = line.ids[0]
    assert not line.tray.load(device_id).setup_done
    outcome = line.run(device_id)
    assert outcome.passed, outcome.reason
    assert outcome.hello is not None and outcome.hello.device_id == device_id
    by_name = {m.name: m for m in outcome.measurements}
    assert set(by_name) == {"vbat", "soc", "device_os", "rssi", "radio.qual", "setup_done"}
    assert by_name["vbat"].unit == "V" and 3.6 <= float(by_name["vbat"].value or 0) <= 4.3
    assert by_name["rssi"].value == -71 and by_name["device_os"].value == RELEASE
    assert line.tray.load(device_id).setup_done  # the flag is in the device's DCT now


def test_a_rerun_reads_the_same_values(line: Line) -> None:
    first = line.run(line.ids[0])
    again = line.run(line.ids[0])
    assert [m.value for m in first.measurements] == [m.value for m in again.measurements]


def test_limit_failure_over_the_pty(line: Line) -> None:
    device_id = line.ids[1]
    line.tray.update_record(device_id, readings={**READINGS, "vbat": 3.41})
    outcome = line.run(device_id)
    assert outcome.reason == "power: vbat 3.41 V below 3.6 V"
    assert not line.tray.load(device_id).setup_done  # stopped before setup_done


def test_device_that_never_answers(line: Line) -> None:
    device_id = line.ids[1]
    record = line.tray.record(device_id)
    record.faults.never_answers = True
    line.tray.update_record(device_id, faults=record.faults)
    outcome = line.run(device_id)
    assert outcome.reason == "no answer from the test firmware within 3 s"
    assert outcome.steps[0].kind == "hello" and outcome.steps[0].status is StepStatus.FAILED


def test_slow_console_beyond_the_step_timeout(line: Line) -> None:
    device_id = line.ids[1]
    record = line.tray.record(device_id)
    record.faults.slow_console = 0.4  # each answer line 0.4 s late
    line.tray.update_record(device_id, faults=record.faults)
    plan = parse_test_plan(
        {
            "timeout_s": 3,
            "steps": [{**_step(PLAN, "power"), "timeout_s": 0.5}],
        }
    )
    outcome = line.run(device_id, plan)
    assert outcome.reason == "power: no answer from the test firmware within 0.5 s"
    # the last line was due long after the timeout, whether or not the client streams
    assert outcome.measurements[-1].verdict is Verdict.ERROR


def test_production_firmware_does_not_answer_the_protocol(tmp_path: Path) -> None:
    sku = get_sku("BRN404")
    tray = Tray.create(tmp_path / "prod", sku, 1, seed=3, options=FactoryOptions("4.2.0"))
    server = PortServer(tray, time_scale=0)
    paths = server.open()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        device_id = tray.device_ids()[0]
        with TestFirmwareClient(paths[device_id]) as channel:
            outcome = run_test_plan(
                parse_test_plan({"timeout_s": 0.5, "steps": [_step(PLAN, "power")]}), channel
            )
        assert outcome.reason == "no answer from the test firmware within 0.5 s"
    finally:
        server.stop.set()
        thread.join(5)
        server.close()


def _step(plan: TestPlan, name: str) -> dict[str, object]:
    """A plan step back as the dict trayline.toml would give (for variations)."""
    step = next(s for s in plan.steps if s.name == name)
    measurements = [
        {
            k: v
            for k, v in (
                ("name", m.name),
                ("unit", m.unit),
                ("low", m.low),
                ("high", m.high),
                ("regex", m.regex),
            )
            if v not in (None, "")
        }
        for m in getattr(step, "measurements", ())
    ]
    return {"name": step.name, "kind": step.kind.value, "measurements": measurements}

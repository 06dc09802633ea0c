"""The example test firmware in examples/testfw: syntax-checked, then run for real on a pty.

``g++ -std=c++17 -fsyntax-only`` against the stub of the Particle API catches what
a firmware engineer would hit first (typos, wrong API use, missing includes)
without Device OS's toolchain; both the Gen 3 branch (setup-done flag in the
DCT) and the Electron branch (no such field) are checked.

Then the example is built for the host with ``examples/testfw/host`` (a small
implementation of the stub on a Linux pseudo-terminal) and a test plan runs
against it through ``trayline.console``'s client: the station's protocol is
tested against the example firmware's own code, not a description of it. The
real build uses Particle's tools (docs/test-firmware.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from trayline.console.testfw import TestFirmwareClient
from trayline.station.testchannel import PROTOCOL_VERSION, TESTFW_BANNER
from trayline.station.testplan_config import parse_test_plan
from trayline.station.testrunner import TestOutcome, run_test_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "testfw"
SOURCE = EXAMPLE / "src" / "testfw.cpp"


def _gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed: the example firmware's syntax check did not run")
    return gxx


@pytest.mark.parametrize("platform", ["gen3", "electron"])
def test_example_firmware_compiles_against_the_stub(platform: str) -> None:
    args = [_gxx(), "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror"]
    if platform == "electron":
        args.append("-DPARTICLE_STUB_ELECTRON")
    args += ["-I", str(EXAMPLE / "stub"), str(SOURCE)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_a_broken_call_is_caught_by_the_check(tmp_path: Path) -> None:
    """The check can fail: an API the stub does not declare is an error."""
    broken = tmp_path / "broken.cpp"
    broken.write_text(SOURCE.read_text() + "\nvoid extra() { Cellular.teleport(); }\n")
    args = [_gxx(), "-std=c++17", "-fsyntax-only", "-I", str(EXAMPLE / "stub"), str(broken)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "teleport" in done.stderr


def test_firmware_carries_the_banner_and_protocol_version() -> None:
    text = SOURCE.read_text()
    assert f'BANNER[] = "{TESTFW_BANNER}"' in text
    assert f"PROTOCOL_VERSION = {PROTOCOL_VERSION};" in text
    # every command of the protocol is handled
    for cmd in ("hello", "measure", "run", "setup_done", "reset"):
        assert f'cmd == "{cmd}"' in text
    # the guide's setup-done lines, as the guide writes them
    assert (
        "dct_read_app_data_copy(DCT_SETUP_DONE_OFFSET, &val, DCT_SETUP_DONE_SIZE) && val != 1"
        in text
    )
    assert "dct_write_app_data(&val, DCT_SETUP_DONE_OFFSET, DCT_SETUP_DONE_SIZE);" in text


def test_protocol_examples_in_the_firmware_header_are_json() -> None:
    header = SOURCE.read_text().split("*/", 1)[0]
    objects = re.findall(r"\{\"[^\n]*?\}(?=\s|$)", header)
    assert len(objects) >= 6
    for obj in objects:
        if "..." in obj:
            continue
        json.loads(obj)


# ------------------------------------------------------------------ the example, running

DEVICE_ID = "e00fce68a1b2c3d4e5f60718"
PLAN = parse_test_plan(
    {
        "timeout_s": 5,
        "steps": [
            {
                "name": "power",
                "kind": "measure",
                "measurements": [
                    {"name": "vbat", "unit": "V", "low": 3.6, "high": 4.3},
                    {"name": "soc", "unit": "%", "low": 20},
                    {"name": "device_os", "regex": r"4\.\d+\.\d+"},
                ],
            },
            {
                "name": "radio",
                "kind": "run",
                "measurements": [{"name": "rssi", "unit": "dBm", "low": -105}],
            },
            {"name": "setup_done", "kind": "setup_done"},
        ],
    }
)


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("testfw") / "testfw-host"
    args = [_gxx(), "-std=c++17", "-O0", "-I", str(EXAMPLE / "stub"), str(SOURCE)]
    args += [str(EXAMPLE / "host" / "particle_host.cpp"), "-o", str(binary)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return binary


class Board:
    """The example firmware running on the host, its USB serial port a pty."""

    def __init__(self, binary: Path, folder: Path, **env: str) -> None:
        self.dct = folder / "dct.bin"
        variables = {**os.environ, "TESTFW_DCT": str(self.dct), **env}
        self.process = subprocess.Popen(
            [str(binary)], stdout=subprocess.PIPE, text=True, env=variables
        )
        assert self.process.stdout is not None
        self.port = self.process.stdout.readline().strip()
        assert self.port.startswith("/dev/"), self.port

    def run(self) -> TestOutcome:
        with TestFirmwareClient(self.port) as channel:
            return run_test_plan(PLAN, channel, expect_device_id=DEVICE_ID)

    def setup_done_byte(self) -> int | None:
        return self.dct.read_bytes()[8134] if self.dct.exists() else None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def board(host_build: Path, tmp_path: Path) -> Iterator[Board]:
    running = Board(host_build, tmp_path)
    yield running
    running.stop()


def test_the_example_passes_a_plan_and_sets_the_setup_done_byte(board: Board) -> None:
    assert board.setup_done_byte() is None
    outcome = board.run()
    assert outcome.passed, outcome.reason
    assert outcome.hello is not None and outcome.hello.device_os == "4.2.0"
    values = {m.name: (m.value, m.unit) for m in outcome.measurements}
    assert values == {
        "vbat": (3.91, "V"),
        "soc": (81.5, "%"),
        "device_os": ("4.2.0", ""),
        "rssi": (-71, "dBm"),
        "radio.qual": (-9, "dB"),
        "setup_done": (True, ""),
    }
    assert board.setup_done_byte() == 1


def test_the_example_with_a_low_battery_fails_in_plain_words(
    host_build: Path, tmp_path: Path
) -> None:
    board = Board(host_build, tmp_path, TESTFW_VBAT="3.41")
    try:
        outcome = board.run()
    finally:
        board.stop()
    assert outcome.reason == "power: vbat 3.41 V below 3.6 V"
    assert board.setup_done_byte() is None


def test_the_example_answers_bad_requests_and_unknown_names(board: Board) -> None:
    with TestFirmwareClient(board.port, timeout=5) as client:
        refused = client.exchange({"cmd": "frobnicate"}, lambda _o: False)
        assert refused == [{"error": "bad request: unknown cmd 'frobnicate'"}]
        assert client.exchange({"names": []}, lambda _o: False) == [
            {"error": 'bad request: no "cmd"'}
        ]
        measured = client.measure(["temp", "modem_on"])
        assert measured == [
            {"measure": "temp", "error": "unknown measurement"},
            {"measure": "modem_on", "value": False, "unit": ""},
            {"done": True},
        ]
        assert client.run("selftest") == [{"done": False, "error": "unknown test 'selftest'"}]
        assert client.reset() == {"ok": True}
        assert client.hello()["hello"] == TESTFW_BANNER  # back after the reset


def test_the_example_refuses_malformed_and_overlong_lines(board: Board) -> None:
    with serial.Serial(board.port, 115200, timeout=5) as port:
        port.write(b"{not json\n")
        assert json.loads(port.readline()) == {"error": "bad request: not a JSON object"}
        port.write(b"{" + b" " * 600 + b"}\n")
        assert json.loads(port.readline()) == {"error": "bad request: line longer than 512 bytes"}

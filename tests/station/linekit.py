"""A small in-memory line for station tests: bundles, a trayline.toml, fake boards and channels.

Each fake board is a :class:`FakeProgrammer` (NOR flash, modules found by
scanning, from tests/devices) plus a test-firmware channel answering from a
readings dict, so the runner, worker and front are exercised end to end
without the virtual package. ``never_answers`` makes the channel time out,
``wrong_id`` makes the silicon report another device ID than the tray list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devices.fakeprog import FakeProgrammer
from firmware.modulekit import boron_set, build_module, write_all
from trayline.core.skus import get_sku
from trayline.firmware.bundle import create_bundle
from trayline.programmers.base import Programmer
from trayline.settings.line import SlotSpec
from trayline.station.front import TrayEntry
from trayline.station.labels import LabelData, print_label
from trayline.station.line import Line, load_line
from trayline.station.plantester import plan_tester
from trayline.station.prompts import ScriptedPrompts
from trayline.station.runner import Runner
from trayline.station.testchannel import TestChannel
from trayline.station.worker import SlotDevice, TestRequest, UnitWork
from trayline.store.db import Store
from trayline.store.units import UnitView

CONFIG = """\
# a test line
[line]
product = "31337"
sku = "BRN404"
station = "st1"
retest_limit = 1

[site]
country = "US"

[bundles]
test = "brn404-test"
production = "brn404-prod"

[[parts]]
name = "battery"
pattern = "BAT-[0-9]{6}"

[[parts]]
name = "enclosure"
pattern = "ENC-[0-9]{6}"
unique = true

[test_plan]
timeout_s = 1

[[test_plan.steps]]
name = "power"
kind = "measure"
measurements = [{ name = "vbat", unit = "V", low = 3.6, high = 4.3 }]

[slots.A]
backend = "fake"

[slots.B]
backend = "fake"
"""


def make_bundles(store: Store, folder: Path) -> None:
    sku = get_sku("BRN404")
    modules = boron_set()
    prod = write_all(folder / "prod", modules)
    test_modules = dict(modules)
    test_modules["user.bin"] = build_module(
        platform=13,
        function=5,
        index=2,
        version=7,
        start=0xB4000,
        dep=(4, 1, 4005),
        product=(13, 3),
        body=4096,
        seed=9,
    )
    test = write_all(folder / "test", test_modules)
    create_bundle(store, name="brn404-test", sku=sku, files=test, role="test")
    create_bundle(store, name="brn404-prod", sku=sku, files=prod, role="production")


def serial(n: int) -> str:
    return f"P028LAB{n:08d}"


def device_id(n: int) -> str:
    return f"e00fce68{n:016x}"


@dataclass
class Board:
    prog: FakeProgrammer
    readings: dict[str, object] = field(default_factory=lambda: {"vbat": 3.9})
    never_answers: bool = False


class FakeChannel:
    def __init__(self, board: Board) -> None:
        self.board = board

    def _check(self) -> None:
        if self.board.never_answers:
            raise TimeoutError("no answer")

    def hello(self, *, timeout: float) -> Mapping[str, object]:
        self._check()
        return {"hello": "trayline-testfw", "protocol": 1, "device_id": self.board.prog.device_id}

    def measure(self, names: Sequence[str], *, timeout: float) -> list[object]:
        self._check()
        out: list[object] = [
            {"measure": n, "value": self.board.readings[n], "unit": "V"}
            for n in names
            if n in self.board.readings
        ]
        return [*out, {"done": True}]

    def run(self, test: str, args: Mapping[str, object], *, timeout: float) -> list[object]:
        self._check()
        return [{"done": True}]

    def setup_done(self, *, timeout: float) -> Mapping[str, object]:
        self._check()
        return {"ok": True}


@dataclass
class World:
    """Boards by device ID and the tray list that maps serials to them."""

    boards: dict[str, Board] = field(default_factory=dict)
    tray: dict[str, TrayEntry] = field(default_factory=dict)

    def add(self, n: int, *, silicon: str | None = None, **kw: object) -> str:
        did = device_id(n)
        prog = FakeProgrammer(device_id=silicon or did)
        self.boards[did] = Board(prog, **kw)  # type: ignore[arg-type]
        self.tray[serial(n)] = TrayEntry(did)
        return serial(n)

    def locate(self, slot: SlotSpec, unit: UnitView) -> SlotDevice:
        probe = unit.expected_device_id or ""
        return SlotDevice("fake", probe, f"fake:{probe}")

    def open(self, device: SlotDevice, slot: SlotSpec, platform_id: int) -> Programmer:
        return self.boards[device.probe_id].prog

    @contextmanager
    def channel(self, request: TestRequest) -> Iterator[TestChannel]:
        probe = (request.port or "").removeprefix("fake:")
        yield FakeChannel(self.boards[probe])


def make_line(tmp_path: Path, text: str = CONFIG) -> Line:
    path = tmp_path / "trayline.toml"
    path.write_text(text)
    return load_line(path)


def _labeller(line: Line) -> Callable[[UnitView], str] | None:
    config = line.label
    if config is None:
        return None
    return lambda u: print_label(LabelData(u.serial_number, u.device_id or "", u.sku or ""), config)


def make_runner(store: Store, line: Line, world: World, *, owner: str = "st1/test/1/x") -> Runner:
    work = UnitWork(
        store=store,
        config=line.config,
        owner=owner,
        operator="op1",
        tester=plan_tester(line, world.channel, prompts=ScriptedPrompts(default=True)),
        opener=world.open,
        locate=world.locate,
        label=_labeller(line),
    )
    return Runner(work, tray=world.tray)

"""Benchmark: the station's own cost per unit, slot scaling, and a 1,000-unit shift.

Three figures, each against a baseline measured in the same run:

1. **trayline's own time per unit** (target <= 20 ms): units run through one
   slot on in-memory boards whose flash writes and test answers take no time,
   so every millisecond left is trayline's — scanning, store transactions, the
   flashing plan and read-back, the test plan (scans are made first: they are the
   operator's time). Printed with the process CPU per unit, the commits per unit
   and this disk's commit latency, and compared with the simulated device + test
   time of a unit measured on the virtual tray in the same run.
2. **4 slots vs 1 slot** (target >= 3.8x units per hour): on boards whose device time is a
   sleep (trayline's own parallelism), and on the real code path on
   a virtual tray (SWD programmer, pty per device, test-firmware protocol), at a
   time scale where device time dominates as it does on a bench.
3. **a 1,000-unit shift** on SQLite and on PostgreSQL (in-memory boards,
   4 slots): wall time, units per hour, store time per unit.

    .venv/bin/python benchmarks/station.py                 # the targets' settings
    .venv/bin/python benchmarks/station.py --quick         # smaller runs
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from commit_latency import commit_latency
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from trayline.cli.demo import CONFIG, make_demo_bundles, make_demo_tray, served_tray, slots_toml
from trayline.core.ids import DeviceId
from trayline.core.platforms import erase_range
from trayline.core.skus import get_sku
from trayline.programmers.base import Capability, ModuleOnDevice, ProbeInfo, Programmer, WriteResult
from trayline.programmers.scan import scan_modules
from trayline.settings.line import SlotSpec
from trayline.station.assembly import StationOptions, build_runner
from trayline.station.front import TrayEntry
from trayline.station.lease import owner_name
from trayline.station.line import Line, load_line
from trayline.station.plantester import plan_tester
from trayline.station.prompts import ScriptedPrompts
from trayline.station.runner import Runner
from trayline.station.testchannel import TestChannel
from trayline.station.worker import SlotDevice, TestRequest, UnitWork
from trayline.store.db import Store, open_store
from trayline.store.units import UnitView, for_threads

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FLASH = 0x100000


class MemoryBoard:
    """A board whose flash is a bytearray: writes and reads cost only Python's copy."""

    name = "memory"
    capabilities = frozenset(
        {
            Capability.READ_DEVICE_ID,
            Capability.READ_MEMORY,
            Capability.READ_MODULES,
            Capability.WRITE_MODULE,
            Capability.VERIFY,
            Capability.RESET,
        }
    )

    def __init__(self, device_id: str, write_s: float = 0.0) -> None:
        self.device_id = device_id
        self.write_s = write_s
        self.flash = bytearray(b"\xff" * FLASH)
        self.probe = ProbeInfo("memory", device_id)

    def read_device_id(self) -> DeviceId:
        return DeviceId.parse(self.device_id)

    def read_memory(self, address: int, length: int) -> bytes:
        return bytes(self.flash[address : address + length])

    def read_modules(self) -> list[ModuleOnDevice]:
        return scan_modules(self.read_memory, 13)

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        if self.write_s:  # sleep(0) still yields the CPU: not a cost of a zero-time board
            time.sleep(self.write_s)  # the device's own time (erase + program), not trayline's
        span = erase_range(13, address, address + len(data)) or (address, address + len(data))
        self.flash[span[0] : span[1]] = b"\xff" * (span[1] - span[0])
        self.flash[address : address + len(data)] = data
        return WriteResult(address, len(data), 0.0, verified=self.verify(address, data))

    def verify(self, address: int, data: bytes) -> bool:
        return self.flash[address : address + len(data)] == data

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Programmer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class MemoryChannel:
    """The test firmware's answers, at once."""

    def __init__(self, device_id: str, test_s: float = 0.0) -> None:
        self.device_id = device_id
        self.test_s = test_s

    def hello(self, *, timeout: float) -> Mapping[str, object]:
        return {"hello": "trayline-testfw", "protocol": 1, "device_id": self.device_id}

    def measure(self, names: Sequence[str], *, timeout: float) -> list[object]:
        values = {"vbat": 3.95, "temp": 24.0}
        return [*({"measure": n, "value": values[n], "unit": ""} for n in names), {"done": True}]

    def run(self, test: str, args: Mapping[str, object], *, timeout: float) -> list[object]:
        if self.test_s:
            time.sleep(self.test_s)  # the firmware's test routine
        return [{"measure": "rssi", "value": -70, "unit": "dBm"}, {"done": True}]

    def setup_done(self, *, timeout: float) -> Mapping[str, object]:
        return {"ok": True}

    def __enter__(self) -> MemoryChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _device_id(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:24]


def _serial(n: int) -> str:
    return f"P028BENCH{n:06d}"


def _prepare(folder: Path, db: str, slots: int) -> Line:
    store = open_store(db)
    make_demo_bundles(store, folder / "firmware", get_sku("BRN404"))
    store.dispose()
    config = folder / "trayline.toml"
    config.write_text(CONFIG.format(product=31337, sku="BRN404", slots=slots_toml(slots)))
    return load_line(config)


def _memory_runner(
    store: Store, line: Line, units: int, *, write_s: float = 0.0, test_s: float = 0.0
) -> Runner:
    store = for_threads(store)
    boards: dict[str, MemoryBoard] = {}

    def locate(slot: SlotSpec, unit: UnitView) -> SlotDevice:
        return SlotDevice("memory", unit.expected_device_id or "", None)

    def opener(device: SlotDevice, slot: SlotSpec, platform_id: int) -> Programmer:
        board = boards.get(device.probe_id)  # a new 1 MiB board only the first time
        if board is None:
            board = boards[device.probe_id] = MemoryBoard(device.probe_id, write_s)
        return board

    @contextmanager
    def channel(request: TestRequest) -> Iterator[TestChannel]:
        yield MemoryChannel(request.device_id, test_s)

    work = UnitWork(
        store=store,
        config=line.config,
        owner=owner_name(line.config.station),
        operator="bench",
        tester=plan_tester(line, channel, prompts=ScriptedPrompts(default=True)),
        opener=opener,
        locate=locate,
    )
    tray = {_serial(n): TrayEntry(_device_id(n)) for n in range(units)}
    return Runner(work, tray=tray)


def _shift(runner: Runner, scans: Sequence[str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    runner.start()
    for line in scans:
        runner.scan(line)
    runner.wait_idle()
    elapsed = time.perf_counter() - started
    runner.stop()
    return elapsed, runner.summary()


def _memory_scans(units: int) -> list[str]:
    return [s for n in range(units) for s in (_serial(n), f"BAT-{n:08d}", f"ENC-{n:08d}")]


def own_time(
    folder: Path, units: int, *, durable: bool = True
) -> tuple[float, float, dict[str, float]]:
    """Slot time and process CPU time per unit on zero-time boards (scans done first), and
    per unit: ``commits`` (each flushed to disk when it wrote), ``relaxed`` commits (not
    flushed on their own: a lease) and SQL ``statements``.

    ``durable=False`` turns SQLite's fsync off for this run only, to split the
    figure into CPU and the disk's flush latency.
    """
    label = "own" if durable else "own-nosync"
    db = f"sqlite:///{folder / label / 'own.db'}"
    (folder / label).mkdir(parents=True)
    line = _prepare(folder / label, db, 1)
    store = open_store(db)
    # Counted on every engine of this database: the store's own, and the one whose
    # commits are not flushed on their own (store.unit_sessions.relaxed: leases).
    counts = Counter[str]()

    def on_commit(conn: Connection) -> None:
        if conn.engine.url == store.engine.url:
            counts["commits" if conn.engine is store.engine else "relaxed"] += 1

    def on_statement(conn: Connection, *_args: object) -> None:
        if conn.engine.url == store.engine.url:
            counts["statements"] += 1

    event.listen(Engine, "commit", on_commit)
    event.listen(Engine, "before_cursor_execute", on_statement)
    if not durable:
        event.listen(
            store.engine,
            "connect",
            lambda dbapi, _rec: dbapi.execute("PRAGMA synchronous=OFF"),
        )
        store.engine.dispose()
    runner = _memory_runner(store, line, units)
    for scan in _memory_scans(units):
        runner.scan(scan)
    counts.clear()
    started, cpu = time.perf_counter(), time.process_time()
    runner.start()
    runner.wait_idle()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    runner.stop()
    event.remove(Engine, "commit", on_commit)
    event.remove(Engine, "before_cursor_execute", on_statement)
    summary = runner.summary()
    store.dispose()
    assert summary["by_status"] == {"ready": units}, summary
    per_unit = {k: v / units for k, v in counts.items()}
    return elapsed / units, cpu / units, per_unit


def sleeping_scaling(folder: Path, units: int, slots: int) -> float:
    """Units per hour on boards whose device work is a sleep (0.25 s per module write,
    0.5 s per test routine): trayline's own parallelism, without a simulator's CPU."""
    label = f"sleepy-{slots}"
    db = f"sqlite:///{folder / label / 'trayline.db'}"
    (folder / label).mkdir(parents=True)
    line = _prepare(folder / label, db, slots)
    store = open_store(db)
    runner = _memory_runner(store, line, units, write_s=0.25, test_s=0.5)
    elapsed, summary = _shift(runner, _memory_scans(units))
    store.dispose()
    assert summary["by_status"] == {"ready": units}, summary
    return units / elapsed * 3600


def slot_scaling(folder: Path, units: int, slots: int, scale: float) -> float:
    """Units per hour on a virtual tray through ``slots`` slots (the real code path)."""
    run_dir = folder / f"virtual-{slots}"
    db = f"sqlite:///{run_dir / 'trayline.db'}"
    run_dir.mkdir(parents=True)
    line = _prepare(run_dir, db, slots)
    tray, _ = make_demo_tray(run_dir / "tray", get_sku("BRN404"), units, seed=5)
    stickers = [s for s in (tray.folder / "stickers.txt").read_text().split("\n") if s.strip()]
    scans = [x for n, s in enumerate(stickers) for x in (s, f"BAT-{n:08d}", f"ENC-{n:08d}")]
    store = open_store(db)
    options = StationOptions(
        virtual_dir=tray.folder, time_scale=scale, backend_options=(("sync", "0"),)
    )
    with served_tray(tray.folder, units, scale):
        runner = build_runner(store, line, options, prompts=ScriptedPrompts(default=True))
        elapsed, summary = _shift(runner, scans)
    store.dispose()
    done = sum(summary["by_status"].values())
    assert done == units, summary
    return units / elapsed * 3600


@contextmanager
def _pg_database() -> Iterator[str | None]:
    name = f"trayline_bench_{int(time.time())}"
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server: say so, skip that row
        print(f"  PostgreSQL not reachable at {PG_ADMIN}: {str(exc).splitlines()[0]}")
        yield None
        return
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def shift(folder: Path, db: str, units: int, label: str) -> None:
    line = _prepare(folder / label, db, 4)
    store = open_store(db)
    elapsed, summary = _shift(_memory_runner(store, line, units), _memory_scans(units))
    store.dispose()
    assert summary["by_status"] == {"ready": units}, summary
    print(
        f"  {label:<10} {units} units in {elapsed:6.1f} s: {units / elapsed * 3600:9.0f} "
        f"units/hour, {elapsed / units * 1000:5.1f} ms per unit (4 slots, zero device time)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="Smaller runs.")
    parser.add_argument("--scale", type=float, default=0.1, help="Virtual time scale.")
    args = parser.parse_args()
    own_units, virtual_units, shift_units = (40, 8, 200) if args.quick else (200, 16, 1000)
    with tempfile.TemporaryDirectory(prefix="trayline-bench-") as tmp:
        folder = Path(tmp)
        print("1. trayline's own time per unit (zero-time boards, 1 slot, SQLite; target 20 ms)")
        own, cpu, counts = own_time(folder, own_units)
        nosync, _, _ = own_time(folder, own_units, durable=False)
        flush = commit_latency(folder)
        print(
            f"  {own * 1000:.1f} ms per unit (wall, slot only) over {own_units} units, "
            f"synchronous=FULL; {cpu * 1000:.1f} ms of process CPU per unit"
        )
        print(
            f"  {counts.get('commits', 0):.1f} commits (+{counts.get('relaxed', 0):.1f} "
            f"not flushed on their own) and {counts.get('statements', 0):.0f} SQL statements "
            "per unit; this disk flushes a commit in "
            f"{flush * 1000:.1f} ms; with fsync off: {nosync * 1000:.1f} ms per unit"
        )
        print(
            f"2a. 4 slots vs 1 slot, {virtual_units} units on boards whose device time is a sleep"
        )
        one_s = sleeping_scaling(folder, virtual_units, 1)
        four_s = sleeping_scaling(folder, virtual_units, 4)
        print(f"  1 slot : {one_s:9.0f} units/hour (baseline)")
        print(f"  4 slots: {four_s:9.0f} units/hour = {four_s / one_s:.2f}x (target >= 3.8x)")
        print(
            f"2b. the same on a virtual tray (time scale {args.scale}; the simulator's CPU counts)"
        )
        one = slot_scaling(folder, virtual_units, 1, args.scale)
        four = slot_scaling(folder, virtual_units, 4, args.scale)
        device_s = (3600 / one - own) / args.scale
        print(f"  1 slot : {one:9.0f} units/hour (baseline)")
        print(f"  4 slots: {four:9.0f} units/hour = {four / one:.2f}x (target >= 3.8x)")
        print(
            f"  simulated device + test time per unit at scale 1: {device_s:.1f} s; trayline's "
            f"own {own * 1000:.1f} ms is {own / device_s:.2%} of it"
        )
        print(f"3. a {shift_units}-unit shift")
        shift(folder, f"sqlite:///{folder / 'shift.db'}", shift_units, "SQLite")
        with _pg_database() as pg:
            if pg is not None:
                shift(folder, pg, shift_units, "PostgreSQL")


if __name__ == "__main__":
    main()

"""When each write reaches the disk, and what a process killed between two writes leaves.

A unit's lease is committed without a flush of its own (SQLite ``synchronous=NORMAL``):
it means nothing once its process is gone. Flash intents and results, test results and
statuses are flushed (``synchronous=FULL``) before the device is touched or a verdict is
shown. A passed test is written with the production flash's intent; a process killed in
between runs the test again under the same attempt number, and nothing else.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from trayline.cli.demo import CONFIG, make_demo_bundles, make_demo_tray, served_tray, slots_toml
from trayline.core.skus import get_sku
from trayline.station.record import unit_record
from trayline.store.db import Store, open_store
from trayline.store.flash_records import flash_records_for_unit
from trayline.store.unit_sessions import relaxed, writing
from trayline.store.units import (
    EventContext,
    lease_by_serial,
    list_units,
    register_unit,
    release_lease,
)

CTX = EventContext("st1", "A", "op")

KILL_AT_PRODUCTION = """
import os, signal, sys
import trayline.station.worker as worker

real = worker.flash_bundle

def flash(store, prog, bundle, *, role=None, **kw):
    if role == "production":  # the test passed; its result is not written yet
        os.kill(os.getpid(), signal.SIGKILL)
    return real(store, prog, bundle, role=role, **kw)

worker.flash_bundle = flash
from trayline.cli.app import main
sys.argv = ["trayline", *sys.argv[1:]]
main()
"""


KILL_AFTER_SETUP_DONE = """
import os, signal, sys
from trayline.programmers.virtual import VirtualProgrammer

real = VirtualProgrammer.set_setup_done

def set_setup_done(self, done=True):
    real(self, done)  # the flag is on the device; the production result is not written yet
    os.kill(os.getpid(), signal.SIGKILL)

VirtualProgrammer.set_setup_done = set_setup_done
from trayline.cli.app import main
sys.argv = ["trayline", *sys.argv[1:]]
main()
"""


def _sync(session_store: Store, relaxed_session: bool) -> int:
    context = relaxed if relaxed_session else writing
    with context(session_store) as session:
        return int(session.execute(text("PRAGMA synchronous")).scalar_one())


def test_only_lease_writes_skip_the_flush_and_the_next_write_is_flushed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'line.db'}")
    full, normal = 2, 1
    assert _sync(store, relaxed_session=False) == full
    assert _sync(store, relaxed_session=True) == normal
    assert _sync(store, relaxed_session=False) == full  # the same pooled connection, reset
    unit, _ = register_unit(store, "P028TEST0000001", sku="BRN404", ctx=CTX)
    view = lease_by_serial(store, unit.serial_number, "st1/h/1/x", ttl=timedelta(minutes=5))
    assert view is not None and view.lease_owner == "st1/h/1/x"
    release_lease(store, unit.id, "st1/h/1/x")
    with store.session() as session:
        assert int(session.execute(text("PRAGMA synchronous")).scalar_one()) == full
        owner = session.execute(text("SELECT lease_owner FROM units")).scalar_one()
    assert owner is None
    store.dispose()


def _line(folder: Path) -> tuple[Path, str, Path, Path]:
    sku = get_sku("BRN404")
    tray, _ = make_demo_tray(folder / "tray", sku, 1, seed=3)
    db = f"sqlite:///{folder / 'trayline.db'}"
    store = open_store(db)
    make_demo_bundles(store, folder / "firmware", sku)
    store.dispose()
    config = folder / "trayline.toml"
    config.write_text(CONFIG.format(product=31337, sku="BRN404", slots=slots_toml(1)))
    [sticker] = [s for s in (tray.folder / "stickers.txt").read_text().split("\n") if s.strip()]
    script = folder / "scans.txt"
    script.write_text(f"{sticker}\nBAT-00000001\nENC-00000001\n")
    return config, db, script, tray.folder


def _station(config: Path, db: str, script: Path, tray: Path, *code: str) -> list[str]:
    args = ["station", "run", "-c", str(config), "--db", db, "--virtual", str(tray)]
    args += ["--script", str(script), "--json", "--time-scale", "0"]
    return [sys.executable, *code, *(args if code else ["-m", "trayline", *args])]


def _kill_then_resume(tmp_path: Path, kill_code: str, after_kill: Callable[[Store], None]) -> str:
    """Run the one-unit line under ``kill_code`` (it SIGKILLs itself at a commit boundary),
    check the store with ``after_kill``, then run it again to the end: the database URL."""
    config, db, script, tray = _line(tmp_path)
    with served_tray(tray, 1, 0.0):
        killed = subprocess.run(
            _station(config, db, script, tray, "-c", kill_code),
            capture_output=True,
            timeout=300,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
        store = open_store(db)
        after_kill(store)
        store.dispose()

        resumed = subprocess.run(_station(config, db, script, tray), capture_output=True)
        assert resumed.returncode == 0, resumed.stderr.decode()
    return db


def test_a_kill_after_a_passed_test_reruns_only_that_test(tmp_path: Path) -> None:
    def after_kill(store: Store) -> None:
        [unit] = list_units(store)
        assert unit.status == "test_flashed"  # the pass was not on disk yet
        assert unit.running_attempt == 1
        before = unit_record(store, unit)
        assert [(a["number"], a["outcome"], a["measurements"]) for a in before["attempts"]] == [
            (1, "running", [])
        ]
        assert [(r.role, r.status) for r in flash_records_for_unit(store, unit.id)] == [
            ("test", "done")
        ]

    db = _kill_then_resume(tmp_path, KILL_AT_PRODUCTION, after_kill)
    store = open_store(db)
    [unit] = list_units(store)
    record = unit_record(store, unit)
    assert unit.status == "ready"
    [attempt] = record["attempts"]  # the same attempt, run again, its measurements once
    assert (attempt["number"], attempt["outcome"]) == (1, "pass")
    names = [m["name"] for m in attempt["measurements"]]
    assert names and len(names) == len(set(names))
    flashes = [(r.role, r.status) for r in flash_records_for_unit(store, unit.id)]
    assert flashes == [("test", "done"), ("production", "done")]
    kinds = [e["kind"] for e in record["events"]]
    assert kinds.count("tested") == 1 and kinds.index("tested") < kinds.index("production_flashed")
    store.dispose()


def test_a_kill_after_the_setup_done_flag_repeats_only_the_production_step(
    tmp_path: Path,
) -> None:
    def after_kill(store: Store) -> None:
        [unit] = list_units(store)
        assert unit.status == "tested"  # the production intent (and the test) are on disk
        assert [(r.role, r.status) for r in flash_records_for_unit(store, unit.id)] == [
            ("test", "done"),
            ("production", "writing"),
        ]

    db = _kill_then_resume(tmp_path, KILL_AFTER_SETUP_DONE, after_kill)
    store = open_store(db)
    [unit] = list_units(store)
    record = unit_record(store, unit)
    assert unit.status == "ready"
    assert [(a["number"], a["outcome"]) for a in record["attempts"]] == [(1, "pass")]
    flashes = flash_records_for_unit(store, unit.id)
    assert [(r.role, r.status) for r in flashes] == [
        ("test", "done"),
        ("production", "writing"),
        ("production", "done"),
    ]
    assert flashes[-1].bytes_written == 0  # the repeat found the production firmware there
    kinds = [e["kind"] for e in record["events"]]
    assert kinds[-4:] == ["production_flashed", "verified", "setup_done", "ready"]
    assert kinds.count("setup_done") == 1
    store.dispose()

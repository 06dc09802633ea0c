"""SIGKILL the station at random moments mid-shift; after each restart it goes on from the record.

Two identical virtual trays (same seed): one runs the shift uninterrupted, the
other is killed 20 times at random moments (after a random number of
rows written, so every kill lands mid-shift) and restarted with the same scan
script each time (as an operator would re-scan after a power cut). In the end
every unit must be in the state the uninterrupted run gave it (status, reason,
attempt outcomes, firmware), none lost, and no device may hold trayline's test
or production firmware without a flash record for it.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trayline.cli.demo import CONFIG, make_demo_bundles, make_demo_tray, served_tray, slots_toml
from trayline.core.skus import get_sku
from trayline.programmers.registry import open_programmer
from trayline.station.record import unit_record
from trayline.store.db import open_store
from trayline.store.flash_records import flash_records_for_device
from trayline.store.units import list_units

UNITS = 20
"""Long enough that 20 kills land mid-shift: a faster station (fewer, larger commits) finished
a 10-unit shift after 7 kills on a loaded machine."""
FAILING = 2
"""The demo tray fails one unit in ten by design."""
KILLS = 20
USER_PART = 5
VERSION_ROLE = {7: "test", 8: "production"}


def _line(folder: Path, units: int) -> tuple[Path, str, Path]:
    sku = get_sku("BRN404")
    tray, _ = make_demo_tray(folder / "tray", sku, units, seed=11)
    db = f"sqlite:///{folder / 'trayline.db'}"
    store = open_store(db)
    make_demo_bundles(store, folder / "firmware", sku)
    store.dispose()
    config = folder / "trayline.toml"
    config.write_text(CONFIG.format(product=31337, sku="BRN404", slots=slots_toml(2)))
    stickers = [s for s in (tray.folder / "stickers.txt").read_text().split("\n") if s.strip()]
    script = folder / "scans.txt"
    script.write_text(
        "".join(f"{s}\nBAT-{n:08d}\nENC-{n:08d}\n" for n, s in enumerate(stickers, start=1))
    )
    return config, db, script


def _station(config: Path, db: str, script: Path, tray: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "trayline", "station", "run", "-c", str(config)]
    argv += ["--db", db, "--virtual", str(tray), "--script", str(script), "--json"]
    argv += ["--time-scale", "0"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _progress(db: str) -> int:
    """Rows written so far (events, flash records, attempts): the kill moments are chosen on it."""
    path = db.removeprefix("sqlite:///")
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            return sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("events", "flash_records", "unit_attempts")
            )
    except sqlite3.OperationalError:
        return 0


def _end_state(db: str) -> dict[str, Any]:
    store = open_store(db)
    state = {}
    for unit in list_units(store):
        record = unit_record(store, unit)
        state[unit.serial_number] = {
            "status": unit.status,
            "reason": unit.reason,
            "parts": record["parts"],
            "attempts": [(a["outcome"], a["reason"]) for a in record["attempts"]],
            "firmware": record["firmware"],
        }
    store.dispose()
    return state


def _unrecorded_flashes(db: str, tray: Path) -> list[str]:
    store = open_store(db)
    problems = []
    for device_id in json.loads((tray / "ports.json").read_text()):
        with open_programmer(
            "virtual",
            device_id,
            slot="check",
            platform_id=13,
            options={"tray": str(tray), "time_scale": "0"},
        ) as prog:
            modules = prog.read_modules()
        roles = {VERSION_ROLE.get(m.version) for m in modules if m.function == USER_PART}
        recorded = {r.role for r in flash_records_for_device(store, device_id)}
        problems += [f"{device_id}: {role} without a record" for role in roles - recorded - {None}]
    store.dispose()
    return problems


def test_sigkill_twenty_times_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    ref_cfg, ref_db, ref_script = _line(tmp_path / "ref", UNITS)
    cfg, db, script = _line(tmp_path / "crash", UNITS)
    with served_tray(tmp_path / "ref" / "tray", UNITS, 0.0):
        done = _station(ref_cfg, ref_db, ref_script, tmp_path / "ref" / "tray")
        _out, err = done.communicate(timeout=300)
        assert done.returncode == 1, err.decode()  # units fail by design (FAILING)
    expected = _end_state(ref_db)
    assert [u["status"] for u in expected.values()].count("ready") == UNITS - FAILING

    rng = random.Random(20261125)
    kills = 0
    with served_tray(tmp_path / "crash" / "tray", UNITS, 0.0):
        while kills < KILLS:
            target = _progress(db) + rng.randint(1, 8)
            proc = _station(cfg, db, script, tmp_path / "crash" / "tray")
            while proc.poll() is None and _progress(db) < target:
                time.sleep(0.002)
            if proc.poll() is not None:
                break  # the shift finished before this kill: nothing left to interrupt
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        final = _station(cfg, db, script, tmp_path / "crash" / "tray")
        final.communicate(timeout=300)
        assert final.returncode in (0, 1)
        assert _unrecorded_flashes(db, tmp_path / "crash" / "tray") == []
    assert kills == KILLS, f"the shift ended after {kills} kills"
    assert _end_state(db) == expected

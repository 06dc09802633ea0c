"""Helpers for the CM/customer tests: a small line that makes ready and failed units.

The line is the station's own test kit (tests/station/linekit.py: fake boards,
real runner, worker, test plan and store), so the manifests and outbox rows
here come from units that went through the real state machine.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "station"))

from linekit import World, make_bundles, make_line, make_runner

from trayline.store.db import Store
from trayline.store.models.line import Event, Part, Unit, UnitAttempt, UnitMeasurement
from trayline.store.models.outbox import ImportedManifest, OutboxMessage, TrustedKey


@dataclass
class BuiltLine:
    ready: list[str]
    failed: list[str]
    config: Path


def build_line(store: Store, tmp_path: Path, *, ready: int = 3, failed: int = 1) -> BuiltLine:
    """Run ``ready`` good boards and ``failed`` low-battery boards through a two-slot line."""
    make_bundles(store, tmp_path / "bundles")
    world = World()
    scans: list[str] = []
    good: list[str] = []
    bad: list[str] = []
    for n in range(1, ready + failed + 1):
        low = n > ready
        serial = world.add(n, readings={"vbat": 3.0}) if low else world.add(n)
        (bad if low else good).append(serial)
        scans += [serial, f"BAT-{n:06d}", f"ENC-{n:06d}"]
    line = make_line(tmp_path)
    runner = make_runner(store, line, world)
    runner.start()
    for scan in scans:
        runner.scan(scan)
    assert runner.wait_idle(60)
    runner.stop()
    return BuiltLine(good, bad, tmp_path / "trayline.toml")


def fingerprint(store: Store) -> tuple[object, ...]:
    """Row counts and the newest change of everything an import could write."""
    with store.session() as session:
        counts = tuple(
            session.execute(select(func.count()).select_from(model)).scalar()
            for model in (
                Unit,
                Part,
                Event,
                UnitAttempt,
                UnitMeasurement,
                ImportedManifest,
                TrustedKey,
                OutboxMessage,
            )
        )
        newest = session.execute(select(func.max(Unit.updated_at))).scalar()
    return (*counts, newest)

"""Trusted keys and imported manifests: the customer's side of the CM's signed shipments.

:func:`trust_key` records a CM's Ed25519 public key (by its id);
:func:`trusted_keys` hands the verifier the id → key map. An imported manifest
is written by :func:`import_units` in *one* transaction: the manifest's row,
and for each unit a create-or-update to status ``ready`` with its parts, its
passing test attempt (measurements with limits and verdicts), firmware digests
and batch, plus an ``imported`` event. The row in ``imported_manifests`` (its
id is unique) makes a second import of the same manifest a no-op, and a
conflict found inside the transaction rolls all of it back: nothing is written
unless everything is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trayline.store.db import Store
from trayline.store.models.line import Event, Part, Unit, UnitAttempt, UnitMeasurement
from trayline.store.models.outbox import ImportedManifest, TrustedKey

__all__ = [
    "ImportConflict",
    "ImportedView",
    "TrustedKeyView",
    "find_imported",
    "import_conflicts",
    "import_units",
    "list_trusted",
    "trust_key",
    "trusted_keys",
]


class ImportConflict(Exception):
    """The manifest disagrees with what this store already knows (nothing was written)."""


@dataclass(frozen=True, slots=True)
class TrustedKeyView:
    key_id: str
    name: str
    public_key: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class ImportedView:
    manifest_id: str
    body_sha256: str
    key_id: str
    site: str
    batch: str | None
    count: int
    file_name: str | None
    imported_at: datetime


def trust_key(store: Store, *, key_id: str, name: str, public_key: str) -> bool:
    """Record a trusted key; False when that key id is trusted already (nothing changes)."""
    try:
        with store.session() as session:
            if session.scalars(select(TrustedKey).where(TrustedKey.key_id == key_id)).first():
                return False
            session.add(TrustedKey(key_id=key_id, name=name, public_key=public_key))
    except IntegrityError:
        return False
    return True


def list_trusted(store: Store) -> list[TrustedKeyView]:
    with store.session() as session:
        rows = session.scalars(select(TrustedKey).order_by(TrustedKey.id)).all()
        return [TrustedKeyView(r.key_id, r.name, r.public_key, r.added_at) for r in rows]


def trusted_keys(store: Store) -> dict[str, str]:
    return {k.key_id: k.public_key for k in list_trusted(store)}


def find_imported(store: Store, manifest_id: str) -> ImportedView | None:
    with store.session() as session:
        row = session.scalars(
            select(ImportedManifest).where(ImportedManifest.manifest_id == manifest_id)
        ).first()
        if row is None:
            return None
        return ImportedView(
            row.manifest_id,
            row.body_sha256,
            row.key_id,
            row.site,
            row.batch,
            row.count,
            row.file_name,
            row.imported_at,
        )


def _conflicts(session: Session, units: Sequence[dict[str, Any]]) -> list[str]:
    serials = [u["serial_number"] for u in units]
    devices = [u["device_id"] for u in units]
    rows = session.execute(
        select(Unit.serial_number, Unit.device_id).where(
            or_(Unit.serial_number.in_(serials), Unit.device_id.in_(devices))
        )
    ).all()
    by_serial = {s: d for s, d in rows}
    by_device = {d: s for s, d in rows if d}
    problems = []
    for unit in units:
        serial, device = unit["serial_number"], unit["device_id"]
        known = by_serial.get(serial)
        if known and known != device:
            problems.append(f"{serial}: this store has device {known}, the manifest says {device}")
        holder = by_device.get(device)
        if holder and holder != serial:
            problems.append(f"device {device}: this store has it on unit {holder}, not {serial}")
    return problems


def import_conflicts(store: Store, units: Sequence[dict[str, Any]]) -> list[str]:
    """Units whose serial or device ID this store knows differently (read only)."""
    with store.session() as session:
        return _conflicts(session, units)


def _attempt(session: Session, unit: Unit, test: dict[str, Any]) -> None:
    number = test.get("attempt") or 1
    exists = session.scalars(
        select(UnitAttempt.id).where(UnitAttempt.unit_id == unit.id, UnitAttempt.number == number)
    ).first()
    if exists is not None:
        return
    finished = test.get("finished_at")
    attempt = UnitAttempt(
        unit_id=unit.id,
        number=number,
        station=test.get("station"),
        outcome="pass",
        finished_at=datetime.fromisoformat(finished) if finished else None,
    )
    attempt.measurements = [
        UnitMeasurement(
            step=m.get("step"),
            name=str(m["name"]),
            value=m.get("value"),
            unit=m.get("unit") or None,
            low=m.get("low"),
            high=m.get("high"),
            equals=m.get("equals"),
            regex=m.get("regex"),
            verdict=str(m["verdict"]),
        )
        for m in test.get("measurements", [])
    ]
    session.add(attempt)


def _upsert(session: Session, entry: dict[str, Any], source: str, note: str) -> None:
    unit = session.scalars(select(Unit).where(Unit.serial_number == entry["serial_number"])).first()
    if unit is None:
        unit = Unit(serial_number=entry["serial_number"])
        session.add(unit)
    unit.device_id = entry["device_id"]
    unit.sku = entry["sku"]
    unit.iccid = entry["iccid"]
    unit.imei = entry["imei"]
    unit.status = "ready"
    unit.reason = None
    unit.station = entry["station"]
    unit.slot = entry["slot"]
    unit.batch = entry["batch"]
    unit.firmware = {role: fw for role, fw in entry["firmware"].items() if fw}
    session.flush()
    have = set(
        session.execute(select(Part.kind, Part.part_serial).where(Part.unit_id == unit.id)).all()
    )
    for part in entry["parts"]:
        if (part["name"], part["serial"]) not in have:
            session.add(Part(unit_id=unit.id, kind=part["name"], part_serial=part["serial"]))
    _attempt(session, unit, entry["test"])
    session.add(
        Event(
            unit_id=unit.id,
            device_id=unit.device_id,
            kind="imported",
            source=source,
            message=note,
            data={"station": source, "slot": None, "operator": None},
        )
    )


def import_units(
    store: Store,
    *,
    manifest: ImportedView,
    units: Sequence[dict[str, Any]],
) -> bool:
    """Write a checked manifest's units in one transaction; False if it was imported already."""
    note = f"imported from manifest {manifest.manifest_id} of {manifest.site}"
    try:
        with store.session() as session:
            if session.scalars(
                select(ImportedManifest.id).where(
                    ImportedManifest.manifest_id == manifest.manifest_id
                )
            ).first():
                return False
            problems = _conflicts(session, units)
            if problems:
                raise ImportConflict(problems[0])
            session.add(
                ImportedManifest(
                    manifest_id=manifest.manifest_id,
                    body_sha256=manifest.body_sha256,
                    key_id=manifest.key_id,
                    site=manifest.site,
                    batch=manifest.batch,
                    count=manifest.count,
                    file_name=manifest.file_name,
                )
            )
            session.flush()
            for entry in units:
                _upsert(session, entry, f"import:{manifest.site}"[:64], note)
    except IntegrityError:
        if find_imported(store, manifest.manifest_id) is not None:
            return False  # another process imported it in the meantime
        raise
    return True

"""The unit record: everything the line knows about one unit, as one JSON-ready object.

``trayline units show IDENT --json`` prints it; reports and the customer's
outbox read the same shape. Keys (stable, documented in docs/station.md):
``serial_number``, ``device_id``, ``sku``, ``status``, ``reason``, ``parts``
[{name, serial}], ``attempts`` [{number, outcome, reason, station, slot,
started_at, finished_at, measurements [{name, value, unit, low, high, verdict,
…}]}], ``firmware`` {test, production: {bundle, digest, modules}}, ``events``
[{at, kind, station, slot, operator, detail}], ``cloud``.
"""

from __future__ import annotations

from typing import Any

from trayline.store.db import Store
from trayline.store.record_fields import firmware_fields
from trayline.store.units import UnitView, unit_attempts, unit_events

__all__ = ["unit_record", "unit_summary"]


def unit_summary(unit: UnitView) -> dict[str, Any]:
    """The short form ``units list --json`` prints, one per unit."""
    return {
        "serial_number": unit.serial_number,
        "device_id": unit.device_id,
        "sku": unit.sku,
        "status": unit.status,
        "reason": unit.reason,
        "station": unit.station,
        "slot": unit.slot,
        "attempts": unit.attempts,
        "updated_at": unit.updated_at.isoformat(),
    }


def unit_record(store: Store, unit: UnitView) -> dict[str, Any]:
    return {
        **unit_summary(unit),
        "iccid": unit.iccid,
        "imei": unit.imei,
        "expected_device_id": unit.expected_device_id,
        "parts": [{"name": kind, "serial": serial} for kind, serial in unit.parts],
        "attempts": [
            {
                "number": a.number,
                "outcome": a.outcome,
                "reason": a.reason,
                "station": a.station,
                "slot": a.slot,
                "started_at": a.started_at.isoformat(),
                "finished_at": a.finished_at.isoformat() if a.finished_at else None,
                "measurements": list(a.measurements),
            }
            for a in unit_attempts(store, unit.id)
        ],
        "firmware": firmware_fields(unit.firmware),
        "events": [
            {
                "at": e.at.isoformat(),
                "kind": e.kind,
                "station": e.station,
                "slot": e.slot,
                "operator": e.operator,
                "detail": e.detail,
            }
            for e in unit_events(store, unit.id)
        ],
        "cloud": unit.cloud,
        "created_at": unit.created_at.isoformat(),
    }

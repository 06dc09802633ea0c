"""The unit record's nested fields as every reader prints them: measurements and firmware.

``units show --json`` (through :mod:`trayline.store.unit_queries` and
:mod:`trayline.station.record`), the outbox's unit snapshot, the shipping
manifest and the quality exports all print a measurement and a unit's firmware
the same way. Keeping each mapping here means a new key (or a rule such as
``unit`` written as ``""`` when the step had none) lands in every output at
once, in the same position.
"""

from __future__ import annotations

from typing import Any

from trayline.store.models.line import UnitMeasurement

__all__ = ["firmware_fields", "measurement_fields"]

_FIRMWARE_ROLES = ("test", "production")


def measurement_fields(m: UnitMeasurement, *, reason: bool = True) -> dict[str, Any]:
    """``step`` … ``verdict`` (then ``reason`` unless ``reason=False``), in the documented order.

    The shipping manifest leaves ``reason`` out: it lists the passing attempt's
    measurements, and its format is fixed (tests/outbox hold it).
    """
    fields: dict[str, Any] = {
        "step": m.step,
        "name": m.name,
        "value": m.value,
        "unit": m.unit or "",
        "low": m.low,
        "high": m.high,
        "equals": m.equals,
        "regex": m.regex,
        "verdict": m.verdict,
    }
    if reason:
        fields["reason"] = m.reason
    return fields


def firmware_fields(stored: dict[str, Any] | None, *, modules: bool = True) -> dict[str, Any]:
    """Per role (``test``, ``production``): its ``bundle``, ``digest`` and ``modules``, or None.

    ``stored`` is the unit's ``firmware`` column (a role is missing until its
    bundle was flashed). The manifest and the units export leave ``modules``
    out (``modules=False``): they name the bundle by its digest.
    """
    fields: dict[str, Any] = {}
    for role in _FIRMWARE_ROLES:
        entry = (stored or {}).get(role)
        if not entry:
            fields[role] = None
            continue
        fields[role] = {"bundle": entry.get("bundle"), "digest": entry.get("digest")}
        if modules:
            fields[role]["modules"] = entry.get("modules", [])
    return fields

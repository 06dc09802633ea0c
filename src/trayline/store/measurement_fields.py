"""One stored measurement as the readers print it: the keys, their order, the blank unit.

``units show --json`` (through :mod:`trayline.store.unit_queries`), the outbox's
unit snapshot, the manifest's passing attempt and the one-row-per-measurement
quality export all print a measurement the same way. Keeping the mapping here means a new
column (or a change such as ``unit`` written as ``""`` when the step had none)
lands in every output at once, in the same position.
"""

from __future__ import annotations

from typing import Any

from trayline.store.models.line import UnitMeasurement

__all__ = ["measurement_fields"]


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

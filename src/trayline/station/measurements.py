"""Measurements and their verdicts: the pure heart of a test plan.

A test plan names what it expects of a board as a :class:`MeasurementSpec`
(``vbat`` in volts between 3.6 and 4.3; ``sim_ok`` equal to ``true``;
``fw_version`` matching ``^1\\.``). What a device, an instrument or an operator
reports becomes a :class:`Measurement` that carries the value *and* the limits,
unit and verdict it was judged by, so the unit record shows later exactly what
was asked and what was seen, even after the plan has changed.

:func:`judge` decides. It is a pure function of the spec and the value, and it
never raises: a value of the wrong type (a string where a number is expected, a
boolean where a range is given, ``NaN``) is an ``error`` verdict with a reason,
not an exception, because a test station must say what went wrong and go on
with the next unit.

Verdicts:

* ``pass`` — every limit given holds (a spec with no limits records the value
  and passes: "record only");
* ``fail`` — the value was read correctly and is outside a limit;
* ``error`` — no usable value (missing, wrong type, not a number, wrong unit):
  the board may be fine, the test could not tell.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

_MAX_EXACT = 2**53
"""Integers beyond this lose precision as floats (and past ~1e308 cannot be one)."""

MAX_TEXT = 200
"""Longest text value kept in a measurement record."""
MAX_UNIT = 16

Value = float | int | str | bool | None
"""What a measurement holds: the JSON scalars the test firmware may send."""


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class MeasurementSpec:
    """What the plan expects of one named measurement.

    ``low``/``high`` are inclusive limits (either may be absent); ``equals``
    compares exactly (a boolean only equals a boolean, a number only a number);
    ``regex`` must match the whole string value. ``unit`` is the unit the limits
    are written in: a device that reports another (non-empty) unit is an error,
    never silently compared (mV against V is a factor of 1000).
    """

    name: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    equals: float | int | str | bool | None = None
    regex: str | None = None

    @property
    def numeric(self) -> bool:
        """True when the spec compares numbers (a range or a numeric ``equals``)."""
        return self.low is not None or self.high is not None or _is_number(self.equals)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One value as judged, with everything it was judged by (what the store keeps)."""

    name: str
    value: Value
    unit: str
    low: float | None
    high: float | None
    equals: float | int | str | bool | None
    regex: str | None
    verdict: Verdict
    reason: str | None = None
    """Plain words for a ``fail`` or ``error`` ("vbat 3.41 V below 3.6 V"); None on pass."""
    step: str = ""
    """The plan step that produced it."""

    def to_json(self) -> dict[str, object]:
        """The shape of ``units show --json`` (``attempts[].measurements[]``)."""
        value: object = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)  # JSON has no NaN/inf
        return {
            "name": self.name,
            "value": value,
            "unit": self.unit,
            "low": self.low,
            "high": self.high,
            "equals": self.equals,
            "regex": self.regex,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "step": self.step,
        }


def _is_number(value: object) -> bool:
    """int or float but not bool (``True`` is an ``int`` in Python, never a reading)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_value(value: Value, unit: str = "") -> str:
    """A value as an operator reads it: ``3.41 V``, ``'ok'``, ``true``, ``1.2e-05 A``."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, int):
        text = str(value)
    elif value is None:
        text = "nothing"
    elif isinstance(value, str) and len(value) > 60:
        text = repr(value[:60]) + "…"
    else:
        text = repr(value)
    return f"{text} {unit}" if unit and _is_number(value) else text


def judge(
    spec: MeasurementSpec, value: object, unit: str | None = None
) -> tuple[Verdict, str | None]:
    """Verdict and reason for ``value`` (as reported, in ``unit``) against ``spec``.

    Pure and total: any Python object may come in (the firmware's JSON is not
    trusted), the answer is always a verdict.
    """
    name = spec.name
    if value is None:
        return Verdict.ERROR, f"{name}: no value"
    if not isinstance(value, int | float | str | bool):
        return Verdict.ERROR, f"{name}: value {value!r} is not a number, string or boolean"
    shown_unit = spec.unit or (unit or "")
    if unit and spec.unit and unit != spec.unit:
        return Verdict.ERROR, f"{name} reported in {unit}, the plan expects {spec.unit}"
    if isinstance(value, float) and math.isnan(value):
        return Verdict.ERROR, f"{name}: not a number (NaN)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_EXACT:
        # JSON integers have no size limit; one this large is garbage, not a reading
        return Verdict.ERROR, f"{name}: integer with {len(str(abs(value)))} digits is not a reading"
    if spec.numeric and not _is_number(value):
        return Verdict.ERROR, f"{name}: expected a number, got {format_value(value)}"
    if _is_number(value):
        verdict = _judge_range(spec, float(value), shown_unit)
        if verdict is not None:
            return verdict
    if isinstance(spec.equals, bool) and not isinstance(value, bool):
        return Verdict.ERROR, f"{name}: expected true or false, got {format_value(value)}"
    if isinstance(spec.equals, str) and not isinstance(value, str):
        return Verdict.ERROR, f"{name}: expected text, got {format_value(value)}"
    if spec.equals is not None and not _equal(spec.equals, value):
        return Verdict.FAIL, (
            f"{name} {format_value(value, shown_unit)}, expected "
            f"{format_value(spec.equals, shown_unit)}"
        )
    if spec.regex is not None:
        if not isinstance(value, str):
            return Verdict.ERROR, f"{name}: expected text, got {format_value(value)}"
        if re.fullmatch(spec.regex, value) is None:
            return Verdict.FAIL, f"{name} {value!r} does not match /{spec.regex}/"
    return Verdict.PASS, None


def _judge_range(spec: MeasurementSpec, value: float, unit: str) -> tuple[Verdict, str] | None:
    shown = format_value(value, unit)
    if spec.low is not None and not value >= spec.low:
        return Verdict.FAIL, f"{spec.name} {shown} below {format_value(spec.low, unit)}"
    if spec.high is not None and not value <= spec.high:
        return Verdict.FAIL, f"{spec.name} {shown} above {format_value(spec.high, unit)}"
    return None


def _equal(expected: object, value: object) -> bool:
    """Exact equality that never equates a boolean with a number (``True == 1``)."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected is value
    if _is_number(expected) and _is_number(value):
        return expected == value
    return type(expected) is type(value) and expected == value


def measure(
    spec: MeasurementSpec, value: object, unit: str | None = None, *, step: str = ""
) -> Measurement:
    """Judge ``value`` and keep it with the spec's limits: the record the store keeps."""
    verdict, reason = judge(spec, value, unit)
    kept = _kept(value)
    return Measurement(
        name=spec.name,
        value=kept,
        unit=spec.unit or (unit or "")[:MAX_UNIT],
        low=spec.low,
        high=spec.high,
        equals=spec.equals,
        regex=spec.regex,
        verdict=verdict,
        reason=reason,
        step=step,
    )


def _kept(value: object) -> Value:
    """What the record keeps of a value: scalars as they are, anything else or oversized as
    short text (the store has columns, not an archive of whatever a device sent)."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return (
            value if abs(value) <= _MAX_EXACT else f"{str(value)[:20]}… ({len(str(value))} digits)"
        )
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    return repr(value)[:MAX_TEXT]


def errored(spec: MeasurementSpec, reason: str, *, step: str = "") -> Measurement:
    """A measurement that could not be taken (firmware said unknown, step timed out)."""
    return Measurement(
        name=spec.name,
        value=None,
        unit=spec.unit,
        low=spec.low,
        high=spec.high,
        equals=spec.equals,
        regex=spec.regex,
        verdict=Verdict.ERROR,
        reason=reason,
        step=step,
    )

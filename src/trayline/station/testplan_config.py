"""Read the ``[test_plan]`` table of ``trayline.toml`` into a :class:`TestPlan`.

The line config (``trayline.settings.line``) hands this module the dict that
``tomllib`` made of ``[test_plan]``; every problem is a :class:`TestPlanError`
naming the key path (``test_plan.steps[2].measurements[0].low``) so the settings
module can add the file and line. Unknown keys are refused: a typo such as
``hihg = 4.3`` would otherwise silently test nothing.

Schema (all times in seconds)::

    [test_plan]
    timeout_s = 5              # firmware steps and the hello (default 5)
    stop_on_fail = true        # stop at the first failed step (default true)

    [test_plan.instruments.dmm]
    resource = "USB0::0x2A8D::0x1301::MY59001234::INSTR"
    backend = ""               # "" system VISA, "@py" pyvisa-py, "bench.yaml@sim" pyvisa-sim

    [[test_plan.steps]]
    name = "power"
    kind = "measure"           # measure | run | prompt | instrument | cloud_online | setup_done
    retries = 1                # extra attempts after a failure (default 0)
    measurements = [
      { name = "vbat", unit = "V", low = 3.6, high = 4.3 },
      { name = "fw_ok", equals = true },
    ]

    [[test_plan.steps]]
    name = "radio"
    kind = "run"
    test = "radio"             # the firmware routine; default: the step name
    args = { seconds = 10 }
    timeout_s = 30
    measurements = [{ name = "rssi", unit = "dBm", low = -105 }]

    [[test_plan.steps]]
    name = "led_green"
    kind = "prompt"
    text = "Is the status LED green?"
    expect = true              # default true

    [[test_plan.steps]]
    name = "sleep_current"
    kind = "instrument"
    instrument = "dmm"
    setup = ["CONF:CURR:DC 0.001"]
    query = "MEAS:CURR:DC?"
    scale = 1e6                # A → µA
    samples = 5                # query 5 times (default 1) ...
    aggregate = "median"       # ... and keep the median (mean | median | min | max)
    measurement = { unit = "uA", high = 150 }   # name defaults to the step name

    [[test_plan.steps]]
    name = "online"
    kind = "cloud_online"
    timeout_s = 600
    poll_interval_s = 5

    [[test_plan.steps]]
    name = "setup_done"
    kind = "setup_done"
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trayline.station.instruments import AGGREGATES
from trayline.station.measurements import MeasurementSpec
from trayline.station.testplan import (
    DEFAULT_CLOUD_TIMEOUT_S,
    DEFAULT_INSTRUMENT_TIMEOUT_S,
    DEFAULT_PROMPT_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    CloudOnlineStep,
    InstrumentSpec,
    InstrumentStep,
    MeasureStep,
    PromptStep,
    RunStep,
    SetupDoneStep,
    Step,
    StepKind,
    TestPlan,
)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
_COMMON_KEYS = {"name", "kind", "timeout_s", "retries", "retry_delay_s"}
_KIND_KEYS: dict[StepKind, set[str]] = {
    StepKind.MEASURE: {"measurements"},
    StepKind.RUN: {"test", "args", "measurements"},
    StepKind.PROMPT: {"text", "expect"},
    StepKind.INSTRUMENT: {
        "instrument",
        "query",
        "setup",
        "scale",
        "samples",
        "aggregate",
        "measurement",
    },
    StepKind.CLOUD_ONLINE: {"poll_interval_s"},
    StepKind.SETUP_DONE: set(),
}
_MEASUREMENT_KEYS = {"name", "unit", "low", "high", "equals", "regex"}
_PLAN_KEYS = {"timeout_s", "stop_on_fail", "instruments", "steps"}
_INSTRUMENT_KEYS = {"resource", "backend", "read_termination", "write_termination"}


class TestPlanError(ValueError):
    """A problem in the test plan, at ``path`` (dotted keys and ``[index]``)."""

    __test__ = False

    def __init__(self, path: str, message: str) -> None:
        if len(message) > 240:  # a pasted blob in a value must not flood the operator's screen
            message = message[:239] + "…"
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def parse_test_plan(
    data: object, path: str = "test_plan", *, base_dir: Path | None = None
) -> TestPlan:
    """The plan in ``data`` (a dict from ``tomllib``), or :class:`TestPlanError`.

    ``base_dir`` resolves a relative pyvisa-sim file in an instrument ``backend``
    (``bench.yaml@sim``) against the directory of ``trayline.toml``.
    """
    table = _table(data, path)
    _no_unknown(table, _PLAN_KEYS, path)
    timeout = _seconds(table, "timeout_s", path, DEFAULT_TIMEOUT_S)
    stop_on_fail = _bool(table, "stop_on_fail", path, default=True)
    instruments = _instruments(table.get("instruments", {}), f"{path}.instruments", base_dir)
    raw_steps = table.get("steps", [])
    if not isinstance(raw_steps, list):
        raise TestPlanError(f"{path}.steps", "expected an array of tables ([[test_plan.steps]])")
    steps = tuple(
        _step(raw, f"{path}.steps[{i}]", timeout, instruments) for i, raw in enumerate(raw_steps)
    )
    _unique_names(steps, path)
    return TestPlan(
        steps=steps,
        instruments=MappingProxyType(instruments),
        hello_timeout_s=timeout,
        stop_on_fail=stop_on_fail,
    )


def _step(
    data: object, path: str, default_timeout: float, instruments: Mapping[str, InstrumentSpec]
) -> Step:
    table = _table(data, path)
    name = _name(table, "name", path)
    kind_text = _str(table, "kind", path)
    try:
        kind = StepKind(kind_text)
    except ValueError:
        known = ", ".join(k.value for k in StepKind)
        raise TestPlanError(
            f"{path}.kind", f"unknown step kind {kind_text!r} (known: {known})"
        ) from None
    _no_unknown(table, _COMMON_KEYS | _KIND_KEYS[kind], path)
    timeout_default = {
        StepKind.PROMPT: DEFAULT_PROMPT_TIMEOUT_S,
        StepKind.INSTRUMENT: DEFAULT_INSTRUMENT_TIMEOUT_S,
        StepKind.CLOUD_ONLINE: DEFAULT_CLOUD_TIMEOUT_S,
    }.get(kind, default_timeout)
    common: dict[str, Any] = {
        "name": name,
        "timeout_s": _seconds(table, "timeout_s", path, timeout_default),
        "retries": _count(table, "retries", path),
        "retry_delay_s": _seconds(table, "retry_delay_s", path, 0.0, allow_zero=True),
    }
    if kind is StepKind.MEASURE:
        specs = _measurements(table, path, required=True)
        return MeasureStep(measurements=specs, **common)
    if kind is StepKind.RUN:
        test = _name(table, "test", path) if "test" in table else name
        args = _table(table.get("args", {}), f"{path}.args")
        return RunStep(
            test=test,
            args=MappingProxyType(dict(args)),
            measurements=_measurements(table, path, required=False),
            **common,
        )
    if kind is StepKind.PROMPT:
        text = _str(table, "text", path)
        return PromptStep(text=text, expect=_bool(table, "expect", path, default=True), **common)
    if kind is StepKind.INSTRUMENT:
        return _instrument_step(table, path, instruments, common)
    if kind is StepKind.CLOUD_ONLINE:
        poll = _seconds(table, "poll_interval_s", path, 5.0)
        return CloudOnlineStep(poll_interval_s=poll, **common)
    return SetupDoneStep(**common)


def _instrument_step(
    table: Mapping[str, object],
    path: str,
    instruments: Mapping[str, InstrumentSpec],
    common: dict[str, Any],
) -> InstrumentStep:
    instrument = _str(table, "instrument", path)
    if instrument not in instruments:
        known = ", ".join(sorted(instruments)) or "none defined"
        raise TestPlanError(
            f"{path}.instrument",
            f"no instrument {instrument!r} in [test_plan.instruments] ({known})",
        )
    setup = table.get("setup", [])
    if not isinstance(setup, list) or not all(isinstance(s, str) and s for s in setup):
        raise TestPlanError(f"{path}.setup", "expected an array of SCPI command strings")
    scale = _number(table, "scale", path)
    if scale is None:
        scale = 1.0
    if scale == 0:
        raise TestPlanError(f"{path}.scale", "must not be 0")
    samples = table.get("samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 1000:
        raise TestPlanError(f"{path}.samples", f"expected a whole number 1..1000, got {samples!r}")
    aggregate = table.get("aggregate", "mean")
    if aggregate not in AGGREGATES:
        known = ", ".join(AGGREGATES)
        raise TestPlanError(f"{path}.aggregate", f"{aggregate!r}: expected one of {known}")
    raw = table.get("measurement", {})
    spec = _measurement(raw, f"{path}.measurement", default_name=str(common["name"]))
    return InstrumentStep(
        instrument=instrument,
        query=_str(table, "query", path),
        measurement=spec,
        setup=tuple(str(s) for s in setup),
        scale=scale,
        samples=samples,
        aggregate=str(aggregate),
        **common,
    )


def _measurements(
    table: Mapping[str, object], path: str, *, required: bool
) -> tuple[MeasurementSpec, ...]:
    raw = table.get("measurements", [])
    if not isinstance(raw, list):
        raise TestPlanError(f"{path}.measurements", "expected an array of tables")
    if required and not raw:
        raise TestPlanError(f"{path}.measurements", "a measure step needs at least one")
    return tuple(_measurement(m, f"{path}.measurements[{i}]") for i, m in enumerate(raw))


def _measurement(data: object, path: str, default_name: str | None = None) -> MeasurementSpec:
    table = _table(data, path)
    _no_unknown(table, _MEASUREMENT_KEYS, path)
    has_name = "name" in table or default_name is None
    name = _name(table, "name", path) if has_name else str(default_name)
    unit = table.get("unit", "")
    if not isinstance(unit, str) or len(unit) > 16:
        raise TestPlanError(
            f"{path}.unit", f"expected a string of up to 16 characters, got {unit!r}"
        )
    low, high = _number(table, "low", path), _number(table, "high", path)
    if low is not None and high is not None and low > high:
        raise TestPlanError(f"{path}.low", f"low {low:g} is above high {high:g}")
    equals = table.get("equals")
    if equals is not None and not isinstance(equals, bool | int | float | str):
        raise TestPlanError(f"{path}.equals", "expected a number, a string or a boolean")
    if isinstance(equals, float) and not math.isfinite(equals):
        raise TestPlanError(f"{path}.equals", "must be a finite number")
    if equals is not None and (low is not None or high is not None):
        raise TestPlanError(f"{path}.equals", "give either equals or low/high, not both")
    regex = table.get("regex")
    if regex is not None:
        if not isinstance(regex, str) or not 0 < len(regex) <= 256:
            raise TestPlanError(f"{path}.regex", "expected a string of 1 to 256 characters")
        try:
            re.compile(regex)
        except re.error as exc:
            raise TestPlanError(f"{path}.regex", f"not a valid regular expression: {exc}") from None
    return MeasurementSpec(name=name, unit=unit, low=low, high=high, equals=equals, regex=regex)


def _instruments(data: object, path: str, base_dir: Path | None) -> dict[str, InstrumentSpec]:
    table = _table(data, path)
    result: dict[str, InstrumentSpec] = {}
    for name, raw in table.items():
        where = _child(path, name)
        if not NAME_RE.fullmatch(name):
            raise TestPlanError(where, "instrument names are letters, digits, _ . -")
        entry = _table(raw, where)
        _no_unknown(entry, _INSTRUMENT_KEYS, where)
        backend = entry.get("backend", "")
        if not isinstance(backend, str):
            raise TestPlanError(f"{where}.backend", "expected a string")
        result[name] = InstrumentSpec(
            name=name,
            resource=_str(entry, "resource", where),
            backend=_resolve_backend(backend, base_dir),
            read_termination=_termination(entry, "read_termination", where),
            write_termination=_termination(entry, "write_termination", where),
        )
    return result


def _resolve_backend(backend: str, base_dir: Path | None) -> str:
    """``bench.yaml@sim`` relative to trayline.toml; ``@sim`` alone is pyvisa-sim's default."""
    file, sep, lib = backend.rpartition("@")
    if sep and file and base_dir is not None and not Path(file).is_absolute():
        return f"{base_dir / file}@{lib}"
    return backend


def _termination(table: Mapping[str, object], key: str, path: str) -> str:
    value = table.get(key, "\n")
    if not isinstance(value, str):
        raise TestPlanError(f"{path}.{key}", 'expected a string such as "\\n"')
    return value


def _unique_names(steps: tuple[Step, ...], path: str) -> None:
    """Step names and measurement names are keys of the unit record: each once per plan."""
    seen: dict[str, str] = {}
    for i, step in enumerate(steps):
        where = f"{path}.steps[{i}]"
        own = [step.name]
        if isinstance(step, MeasureStep | RunStep):
            own = [step.name, *(m.name for m in step.measurements)]
        elif isinstance(step, InstrumentStep) and step.measurement.name != step.name:
            own = [step.name, step.measurement.name]
        for name in dict.fromkeys(own):
            if name in seen:
                raise TestPlanError(where, f"name {name!r} already used by {seen[name]}")
            seen[name] = where


# -- typed readers: each names the key path in its error ------------------------------


def _child(path: str, key: str) -> str:
    """``path.key``; a key that is not a TOML bare key is quoted as TOML would (one line)."""
    if _BARE_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}.{json.dumps(key)}"


def _table(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise TestPlanError(path, f"expected a table, got {_kind_of(value)}")
    return value


def _no_unknown(table: Mapping[str, object], known: set[str], path: str) -> None:
    for key in table:
        if key not in known:
            listed = ", ".join(sorted(known))
            raise TestPlanError(_child(path, key), f"unknown key (known here: {listed})")


def _str(table: Mapping[str, object], key: str, path: str) -> str:
    value = table.get(key)
    if value is None:
        raise TestPlanError(f"{path}.{key}", "missing")
    if not isinstance(value, str) or not value.strip():
        raise TestPlanError(f"{path}.{key}", f"expected a non-empty string, got {value!r}")
    return value


def _name(table: Mapping[str, object], key: str, path: str) -> str:
    value = _str(table, key, path)
    if not NAME_RE.fullmatch(value):
        raise TestPlanError(
            f"{path}.{key}", f"{value!r}: use letters, digits, _ . - (up to 64 characters)"
        )
    return value


def _number(table: Mapping[str, object], key: str, path: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TestPlanError(f"{path}.{key}", f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise TestPlanError(f"{path}.{key}", "must be a finite number")
    return float(value)


def _seconds(
    table: Mapping[str, object], key: str, path: str, default: float, *, allow_zero: bool = False
) -> float:
    value = _number(table, key, path)
    if value is None:
        return default
    if value < 0 or (value == 0 and not allow_zero):
        raise TestPlanError(f"{path}.{key}", f"must be more than 0 seconds, got {value:g}")
    return value


def _count(table: Mapping[str, object], key: str, path: str) -> int:
    value = table.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise TestPlanError(f"{path}.{key}", f"expected a whole number 0..100, got {value!r}")
    return value


def _bool(table: Mapping[str, object], key: str, path: str, *, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise TestPlanError(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


def _kind_of(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"the string {value!r}"
    return type(value).__name__

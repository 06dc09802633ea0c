"""The verdict function: limits (property-tested), equals, regex, types, NaN, units."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from trayline.station.measurements import MeasurementSpec, Verdict, judge, measure

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(value=finite, a=finite, b=finite)
def test_range_passes_exactly_inside_inclusive_limits(value: float, a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    verdict, reason = judge(MeasurementSpec("x", "V", low=low, high=high), value)
    inside = low <= value <= high
    assert verdict is (Verdict.PASS if inside else Verdict.FAIL)
    assert (reason is None) == inside
    if value < low:
        assert reason is not None and " below " in reason
    if value > high:
        assert reason is not None and " above " in reason


@given(value=finite, low=st.one_of(st.none(), finite), high=st.one_of(st.none(), finite))
def test_one_sided_limits(value: float, low: float | None, high: float | None) -> None:
    verdict, _ = judge(MeasurementSpec("x", low=low, high=high), value)
    ok = (low is None or value >= low) and (high is None or value <= high)
    assert verdict is (Verdict.PASS if ok else Verdict.FAIL)


@given(
    value=anything,
    spec_kind=st.sampled_from(["range", "equals_num", "equals_str", "regex", "none"]),
)
def test_judge_is_total_and_a_reason_comes_with_every_non_pass(
    value: object, spec_kind: str
) -> None:
    spec = {
        "range": MeasurementSpec("x", low=0, high=1),
        "equals_num": MeasurementSpec("x", equals=3),
        "equals_str": MeasurementSpec("x", equals="ok"),
        "regex": MeasurementSpec("x", regex=r"\d+"),
        "none": MeasurementSpec("x"),
    }[spec_kind]
    verdict, reason = judge(spec, value)
    assert verdict in set(Verdict)
    assert (reason is None) == (verdict is Verdict.PASS)
    m = measure(spec, value)
    assert m.verdict is verdict and m.reason == reason
    m.to_json()  # always serialisable shape


def test_nan_and_infinities() -> None:
    spec = MeasurementSpec("vbat", "V", low=3.6, high=4.3)
    assert judge(spec, math.nan) == (Verdict.ERROR, "vbat: not a number (NaN)")
    assert judge(spec, math.inf) == (Verdict.FAIL, "vbat inf V above 4.3 V")
    assert judge(spec, -math.inf)[0] is Verdict.FAIL
    assert measure(spec, math.nan).to_json()["value"] == "nan"


def test_booleans_are_not_numbers_and_numbers_not_booleans() -> None:
    assert judge(MeasurementSpec("x", low=0, high=2), True)[0] is Verdict.ERROR
    assert judge(MeasurementSpec("sim", equals=True), 1) == (
        Verdict.ERROR,
        "sim: expected true or false, got 1",
    )
    assert judge(MeasurementSpec("sim", equals=True), False) == (
        Verdict.FAIL,
        "sim false, expected true",
    )
    assert judge(MeasurementSpec("n", equals=3), 3.0)[0] is Verdict.PASS


def test_equals_text_and_regex() -> None:
    assert judge(MeasurementSpec("state", equals="ok"), "ok")[0] is Verdict.PASS
    assert judge(MeasurementSpec("state", equals="ok"), "bad") == (
        Verdict.FAIL,
        "state 'bad', expected 'ok'",
    )
    assert judge(MeasurementSpec("state", equals="ok"), 1)[0] is Verdict.ERROR
    spec = MeasurementSpec("fw", regex=r"1\.\d+")
    assert judge(spec, "1.12")[0] is Verdict.PASS
    assert judge(spec, "1.12-rc")[1] == r"fw '1.12-rc' does not match /1\.\d+/"
    assert judge(spec, 1.12) == (Verdict.ERROR, "fw: expected text, got 1.12")


def test_units_empty_from_device_is_taken_as_the_plans() -> None:
    spec = MeasurementSpec("vbat", "V", low=3.6)
    assert judge(spec, 3.9, "")[0] is Verdict.PASS
    assert judge(spec, 3.9, None)[0] is Verdict.PASS
    assert judge(spec, 3900, "mV") == (Verdict.ERROR, "vbat reported in mV, the plan expects V")
    # a spec without a unit records the device's unit
    assert measure(MeasurementSpec("rssi"), -70, "dBm").unit == "dBm"


def test_record_only_spec_passes_any_scalar() -> None:
    for value in (1, 2.5, "text", False):
        assert judge(MeasurementSpec("x"), value)[0] is Verdict.PASS
    assert judge(MeasurementSpec("x"), {"a": 1})[0] is Verdict.ERROR


def test_oversized_values_from_a_device_are_errors_and_kept_short() -> None:
    spec = MeasurementSpec("x", low=0, high=1)
    assert judge(spec, 10**400) == (Verdict.ERROR, "x: integer with 401 digits is not a reading")
    kept = measure(MeasurementSpec("x"), 10**400)
    assert kept.verdict is Verdict.ERROR and isinstance(kept.value, str) and len(kept.value) < 60
    long_text = measure(MeasurementSpec("fw", equals="ok"), "y" * 5000, "z" * 100)
    assert isinstance(long_text.value, str) and len(long_text.value) == 201
    assert len(long_text.reason or "") < 120 and len(long_text.unit) == 16
    assert measure(MeasurementSpec("n"), 2**53).value == 2**53

"""Whatever a device sends, the runner answers with an outcome and a reason, never an exception."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from trayline.station.measurements import Verdict
from trayline.station.testplan_config import parse_test_plan
from trayline.station.testrunner import StepStatus, run_test_plan

PLAN = parse_test_plan(
    {
        "stop_on_fail": False,
        "steps": [
            {
                "name": "power",
                "kind": "measure",
                "measurements": [
                    {"name": "vbat", "unit": "V", "low": 3.6, "high": 4.3},
                    {"name": "ok", "equals": True},
                    {"name": "fw", "regex": "1\\..*"},
                ],
            },
            {"name": "radio", "kind": "run", "measurements": [{"name": "rssi", "low": -105}]},
            {"name": "setup_done", "kind": "setup_done"},
        ],
    }
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(["measure", "value", "unit", "done", "error", "log", "ok", "hello"])
names = st.sampled_from(["vbat", "ok", "fw", "rssi", "x", ""])
records = st.one_of(
    json_like,
    st.dictionaries(keys, st.one_of(json_like, names), max_size=4),
    st.fixed_dictionaries(
        {"measure": names, "value": json_like}, optional={"unit": st.sampled_from(["V", "mV", ""])}
    ),
)
stream = st.lists(records, max_size=12)


class Garbage:
    def __init__(self, measure: list[object], run: list[object], setup: object) -> None:
        self._measure, self._run, self._setup = measure, run, setup

    def hello(self, *, timeout: float) -> Mapping[str, object]:
        return {"hello": "trayline-testfw", "protocol": 1, "device_id": "e00f" + "0" * 20}

    def measure(self, names: Sequence[str], *, timeout: float) -> Iterator[object]:
        yield from self._measure
        raise TimeoutError  # no {"done"} in the stream: the channel times out

    def run(self, test: str, args: Mapping[str, object], *, timeout: float) -> Iterator[object]:
        yield from self._run

    def setup_done(self, *, timeout: float) -> Mapping[str, object]:
        return self._setup  # type: ignore[return-value]  # the point: anything at all


@settings(max_examples=300, deadline=None)
@given(measure=stream, run=stream, setup=st.one_of(json_like, st.just({"ok": True})))
def test_any_stream_gives_an_outcome_with_reasons(
    measure: list[object], run: list[object], setup: object
) -> None:
    outcome = run_test_plan(PLAN, Garbage(measure, run, setup))
    assert (outcome.reason is None) == outcome.passed
    assert len(outcome.steps) == 3
    for step in outcome.steps:
        assert step.status in (StepStatus.PASSED, StepStatus.FAILED)
        assert (step.reason is None) == (step.status is StepStatus.PASSED)
    for m in outcome.measurements:
        assert m.verdict in set(Verdict)
        assert (m.reason is None) == (m.verdict is Verdict.PASS)
        m.to_json()
    names = {m.name for m in outcome.measurements}
    assert {"vbat", "ok", "fw", "rssi", "setup_done"} <= names  # every expected one recorded

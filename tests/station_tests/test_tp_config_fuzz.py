"""The plan parser on junk: a TestPlan or one TestPlanError with a key path, nothing else."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trayline.station.testplan import TestPlan
from trayline.station.testplan_config import TestPlanError, parse_test_plan

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)

VALID: dict[str, Any] = {
    "timeout_s": 5,
    "instruments": {"dmm": {"resource": "USB0::1::2::3::INSTR"}},
    "steps": [
        {
            "name": "power",
            "kind": "measure",
            "measurements": [{"name": "vbat", "unit": "V", "low": 3.6, "high": 4.3}],
        },
        {"name": "radio", "kind": "run", "args": {"n": 1}, "measurements": [{"name": "rssi"}]},
        {"name": "led", "kind": "prompt", "text": "LED?"},
        {
            "name": "i",
            "kind": "instrument",
            "instrument": "dmm",
            "query": "MEAS?",
            "measurement": {"high": 1},
        },
        {"name": "online", "kind": "cloud_online"},
        {"name": "setup_done", "kind": "setup_done"},
    ],
}


def _check(data: object) -> None:
    try:
        plan = parse_test_plan(data)
    except TestPlanError as exc:
        assert exc.path.startswith("test_plan")
        assert str(exc) == f"{exc.path}: {exc.message}"
        assert "\n" not in str(exc)
        assert len(exc.message) <= 240
    else:
        assert isinstance(plan, TestPlan)


@settings(max_examples=300, deadline=None)
@given(toml_values)
def test_junk_plans(data: object) -> None:
    _check(data)


def _paths(node: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_one_value_of_a_valid_plan_replaced_by_junk(data: st.DataObject) -> None:
    plan = copy.deepcopy(VALID)
    path = data.draw(st.sampled_from(_paths(plan)))
    parent: Any = plan
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(toml_values)
    _check(plan)


def test_the_valid_plan_is_valid() -> None:
    assert len(parse_test_plan(VALID).steps) == 6


def test_a_huge_value_gives_a_short_message() -> None:
    try:
        parse_test_plan({"steps": [{"name": "x" * 100_000, "kind": "measure"}]})
    except TestPlanError as exc:
        assert exc.path == "test_plan.steps[0].name" and len(exc.message) == 240
    else:
        raise AssertionError("a 100,000-character name was accepted")

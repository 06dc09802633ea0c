"""Test plans from trayline.toml: the documented example parses; mistakes name their key path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from trayline.station import testplan_config
from trayline.station.testplan import (
    CloudOnlineStep,
    InstrumentStep,
    MeasureStep,
    PromptStep,
    RunStep,
    SetupDoneStep,
)
from trayline.station.testplan_config import TestPlanError, parse_test_plan


def _doc_example() -> dict[str, Any]:
    doc = testplan_config.__doc__ or ""
    text = doc.split("Schema (all times in seconds)::", 1)[1]
    body = "\n".join(line[4:] for line in text.splitlines())
    return tomllib.loads(body)


def test_the_schema_in_the_docstring_parses() -> None:
    plan = parse_test_plan(_doc_example()["test_plan"], base_dir=Path("/srv/line"))
    kinds = [type(s) for s in plan.steps]
    assert kinds == [
        MeasureStep,
        RunStep,
        PromptStep,
        InstrumentStep,
        CloudOnlineStep,
        SetupDoneStep,
    ]
    power, radio, prompt, dmm, online, _ = plan.steps
    assert isinstance(power, MeasureStep) and power.retries == 1 and power.timeout_s == 5
    assert power.measurements[1].equals is True
    assert isinstance(radio, RunStep) and radio.test == "radio" and radio.args == {"seconds": 10}
    assert isinstance(prompt, PromptStep) and prompt.timeout_s == 300 and prompt.expect
    assert isinstance(dmm, InstrumentStep) and dmm.measurement.name == "sleep_current"
    assert dmm.scale == 1e6 and dmm.setup == ("CONF:CURR:DC 0.001",) and dmm.timeout_s == 10
    assert (dmm.samples, dmm.aggregate) == (5, "median")
    assert isinstance(online, CloudOnlineStep) and online.timeout_s == 600
    assert plan.instruments["dmm"].resource.startswith("USB0::")
    assert plan.needs_firmware


def test_sim_backend_resolves_against_the_config_directory() -> None:
    data = {"instruments": {"dmm": {"resource": "USB::1::INSTR", "backend": "bench.yaml@sim"}}}
    plan = parse_test_plan(data, base_dir=Path("/srv/line"))
    assert plan.instruments["dmm"].backend == "/srv/line/bench.yaml@sim"
    assert (
        parse_test_plan({"instruments": {"d": {"resource": "x", "backend": "@py"}}})
        .instruments["d"]
        .backend
        == "@py"
    )


M = {"name": "power", "kind": "measure", "measurements": [{"name": "vbat", "low": 3.6}]}


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ([], "test_plan", "expected a table, got an array"),
        ({"stepz": []}, "test_plan.stepz", "unknown key"),
        ({"a\nb": 1}, 'test_plan."a\\nb"', "unknown key"),
        ({"instruments": {"my dmm": {}}}, 'test_plan.instruments."my dmm"', "letters, digits"),
        ({"steps": {"a": 1}}, "test_plan.steps", "array of tables"),
        ({"timeout_s": 0}, "test_plan.timeout_s", "more than 0"),
        ({"timeout_s": "5"}, "test_plan.timeout_s", "expected a number"),
        ({"stop_on_fail": "yes"}, "test_plan.stop_on_fail", "true or false"),
        ({"steps": ["power"]}, "test_plan.steps[0]", "expected a table"),
        ({"steps": [{"kind": "measure"}]}, "test_plan.steps[0].name", "missing"),
        ({"steps": [{**M, "kind": "meassure"}]}, "test_plan.steps[0].kind", "unknown step kind"),
        ({"steps": [{**M, "name": "a b"}]}, "test_plan.steps[0].name", "letters, digits"),
        ({"steps": [{**M, "retries": -1}]}, "test_plan.steps[0].retries", "0..100"),
        ({"steps": [{**M, "retries": True}]}, "test_plan.steps[0].retries", "0..100"),
        ({"steps": [{**M, "text": "x"}]}, "test_plan.steps[0].text", "unknown key"),
        ({"steps": [{**M, "measurements": []}]}, "test_plan.steps[0].measurements", "at least one"),
        (
            {"steps": [{**M, "measurements": [{"name": "vbat", "hihg": 4}]}]},
            "test_plan.steps[0].measurements[0].hihg",
            "unknown key",
        ),
        (
            {"steps": [M, {**M, "measurements": [{"name": "vbat", "high": "4"}]}]},
            "test_plan.steps[1].measurements[0].high",
            "expected a number",
        ),
        (
            {"steps": [{**M, "measurements": [{"name": "v", "low": 5, "high": 4}]}]},
            "test_plan.steps[0].measurements[0].low",
            "above high",
        ),
        (
            {"steps": [{**M, "measurements": [{"name": "v", "low": 1, "equals": 2}]}]},
            "test_plan.steps[0].measurements[0].equals",
            "not both",
        ),
        (
            {"steps": [{**M, "measurements": [{"name": "v", "regex": "(("}]}]},
            "test_plan.steps[0].measurements[0].regex",
            "not a valid regular expression",
        ),
        (
            {"steps": [{**M, "measurements": [{"name": "v", "low": float("nan")}]}]},
            "test_plan.steps[0].measurements[0].low",
            "finite",
        ),
        ({"steps": [M, M]}, "test_plan.steps[1]", "already used by test_plan.steps[0]"),
        (
            {"steps": [M, {"name": "vbat", "kind": "setup_done"}]},
            "test_plan.steps[1]",
            "'vbat' already used",
        ),
        ({"steps": [{"name": "p", "kind": "prompt"}]}, "test_plan.steps[0].text", "missing"),
        (
            {"steps": [{"name": "p", "kind": "prompt", "text": "?", "expect": "yes"}]},
            "test_plan.steps[0].expect",
            "true or false",
        ),
        (
            {"steps": [{"name": "i", "kind": "instrument", "instrument": "dmm", "query": "X?"}]},
            "test_plan.steps[0].instrument",
            "no instrument 'dmm'",
        ),
        (
            {
                "instruments": {"dmm": {"resource": "R"}},
                "steps": [
                    {
                        "name": "i",
                        "kind": "instrument",
                        "instrument": "dmm",
                        "query": "X?",
                        "setup": "A",
                    }
                ],
            },
            "test_plan.steps[0].setup",
            "array of SCPI",
        ),
        ({"instruments": {"dmm": {}}}, "test_plan.instruments.dmm.resource", "missing"),
        (
            {
                "instruments": {"dmm": {"resource": "R"}},
                "steps": [
                    {
                        "name": "i",
                        "kind": "instrument",
                        "instrument": "dmm",
                        "query": "X?",
                        "samples": 0,
                    }
                ],
            },
            "test_plan.steps[0].samples",
            "1..1000",
        ),
        (
            {
                "instruments": {"dmm": {"resource": "R"}},
                "steps": [
                    {
                        "name": "i",
                        "kind": "instrument",
                        "instrument": "dmm",
                        "query": "X?",
                        "aggregate": "avg",
                    }
                ],
            },
            "test_plan.steps[0].aggregate",
            "expected one of mean, median, min, max",
        ),
        (
            {"instruments": {"dmm": {"resource": "R", "baud": 9600}}},
            "test_plan.instruments.dmm.baud",
            "unknown key",
        ),
        (
            {"steps": [{"name": "r", "kind": "run", "args": [1]}]},
            "test_plan.steps[0].args",
            "table",
        ),
    ],
)
def test_errors_name_the_key_path(data: object, path: str, words: str) -> None:
    with pytest.raises(TestPlanError) as info:
        parse_test_plan(data)
    assert info.value.path == path
    assert words in info.value.message
    assert str(info.value).startswith(f"{path}: ")


def test_defaults_and_empty_plan() -> None:
    empty = parse_test_plan({})
    assert empty.steps == () and not empty.needs_firmware and empty.stop_on_fail
    plan = parse_test_plan({"timeout_s": 8, "steps": [M, {"name": "r", "kind": "run"}]})
    assert [s.timeout_s for s in plan.steps] == [8, 8]
    run = plan.steps[1]
    assert isinstance(run, RunStep) and run.test == "r" and run.measurements == ()


def test_the_plan_in_docs_test_firmware_parses() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "test-firmware.md").read_text()
    section = doc.split("## Test plans", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    plan = parse_test_plan(tomllib.loads(block)["test_plan"])
    assert [s.kind.value for s in plan.steps] == [
        "measure",
        "run",
        "prompt",
        "run",
        "instrument",
        "run",
        "cloud_online",
        "setup_done",
    ]

"""Bench instruments through PyVISA, rehearsed with pyvisa-sim and a YAML bench definition."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_testfw import FakeTestFirmware

from trayline.station.instruments import (
    InstrumentError,
    VisaInstruments,
    aggregate,
    parse_scpi_number,
)
from trayline.station.measurements import Verdict
from trayline.station.testplan import TestPlan
from trayline.station.testplan_config import parse_test_plan
from trayline.station.testrunner import TestOutcome, run_test_plan

pytest.importorskip("pyvisa_sim")

DATA = Path(__file__).parent / "data"
USB = "USB0::0x2A8D::0x1301::MY59001234::INSTR"


def plan(
    high: float, query: str = "MEAS:CURR:DC?", resource: str = USB, **step: object
) -> TestPlan:
    return parse_test_plan(
        {
            "instruments": {"dmm": {"resource": resource, "backend": "bench_sim.yaml@sim"}},
            "steps": [
                {
                    "name": "sleep_current",
                    "kind": "instrument",
                    "instrument": "dmm",
                    "setup": ["*RST", "CONF:CURR:DC 0.001"],
                    "query": query,
                    "scale": 1e6,
                    "measurement": {"unit": "uA", "high": high},
                    **step,
                }
            ],
        },
        base_dir=DATA,
    )


def run(p: TestPlan) -> TestOutcome:
    with VisaInstruments(p.instruments) as bench:
        return run_test_plan(p, FakeTestFirmware(), instruments=bench)


def test_sleep_current_within_limit_passes_with_scaled_value() -> None:
    outcome = run(plan(high=50))
    assert outcome.passed
    m = outcome.measurements[0]
    assert m.name == "sleep_current" and m.unit == "uA" and m.high == 50
    assert m.value == pytest.approx(12.345)


def test_sleep_current_above_limit_fails_in_plain_words() -> None:
    outcome = run(plan(high=10))
    assert outcome.reason == "sleep_current: sleep_current 12.345 uA above 10 uA"


def test_overload_reading_is_an_error() -> None:
    outcome = run(plan(high=10, query="MEAS:VOLT:DC?"))
    m = outcome.measurements[0]
    assert m.verdict is Verdict.ERROR
    assert "overload reading" in (m.reason or "")


def test_unknown_command_error_reply_is_not_taken_as_a_number() -> None:
    outcome = run(plan(high=10, query="MEAS:CAP?"))
    assert "an error message '-113" in (outcome.reason or "")


def test_instrument_that_does_not_answer_times_out() -> None:
    outcome = run(plan(high=10, query="MEAS:FREQ?", timeout_s=0.2))
    assert outcome.reason == ("sleep_current: no answer from instrument dmm within 0.2 s")


def test_missing_bench_file_is_one_line_naming_the_instrument() -> None:
    p = parse_test_plan(
        {"instruments": {"dmm": {"resource": USB, "backend": "/nonexistent/bench.yaml@sim"}}}
    )
    with VisaInstruments(p.instruments) as bench, pytest.raises(InstrumentError) as info:
        bench.query("dmm", "*IDN?", timeout_s=1)
    text = str(info.value)
    assert text.startswith(f"cannot open instrument dmm at {USB} with backend")
    assert "\n" not in text and "Traceback" not in text


def test_shared_instrument_is_opened_once_and_answers_idn() -> None:
    p = parse_test_plan(
        {"instruments": {"dmm": {"resource": USB, "backend": "bench_sim.yaml@sim"}}}, base_dir=DATA
    )
    with VisaInstruments(p.instruments) as bench:
        first = bench.query("dmm", "*IDN?", timeout_s=1)
        again = bench.query("dmm", "*IDN?", timeout_s=1)
        assert first == again and first.startswith("Keysight Technologies,34465A")
        with pytest.raises(InstrumentError, match="no instrument 'psu' configured"):
            bench.query("psu", "*IDN?", timeout_s=1)


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("+1.23450000E-05", 1.2345e-05),
        ("-70.5,DBM", -70.5),
        (" 3.3\n", 3.3),
        (".5", 0.5),
        ("12", 12.0),
    ],
)
def test_parse_scpi_number(reply: str, value: float) -> None:
    assert parse_scpi_number(reply) == value


@pytest.mark.parametrize(
    "reply", ["", "ERROR", "+9.9E37", "-9.90000000E+37", '-113,"Undefined header"', "nan"]
)
def test_parse_scpi_number_refuses(reply: str) -> None:
    with pytest.raises(ValueError):
        parse_scpi_number(reply)


def test_samples_query_the_instrument_that_many_times() -> None:
    class Counting:
        def __init__(self) -> None:
            self.replies = iter(["+1.0E-05", "+3.0E-05", "+2.0E-05"])
            self.calls = 0

        def query(self, name: str, command: str, *, setup: object = (), timeout_s: float) -> str:
            self.calls += 1
            return next(self.replies)

    p = plan(high=25, samples=3, aggregate="median")
    bench = Counting()
    outcome = run_test_plan(p, FakeTestFirmware(), instruments=bench)
    assert bench.calls == 3
    assert outcome.measurements[0].value == pytest.approx(20.0)
    assert outcome.passed
    with VisaInstruments(plan(high=50, samples=4).instruments) as visa:
        sim = run_test_plan(plan(high=50, samples=4), FakeTestFirmware(), instruments=visa)
    assert sim.measurements[0].value == pytest.approx(12.345)


@pytest.mark.parametrize(
    ("how", "value"), [("mean", 2.5), ("median", 2.5), ("min", 1.0), ("max", 4.0)]
)
def test_aggregate(how: str, value: float) -> None:
    assert aggregate([4.0, 1.0, 3.0, 2.0], how) == value


def test_aggregate_refuses_nothing_and_unknown() -> None:
    with pytest.raises(ValueError, match="no readings"):
        aggregate([], "mean")
    with pytest.raises(ValueError, match="unknown aggregate"):
        aggregate([1.0], "mode")

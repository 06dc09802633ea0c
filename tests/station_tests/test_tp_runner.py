"""The test-plan runner against an in-memory test firmware: limits, timeouts, garbage, retries."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fake_testfw import DEVICE_ID, FakeTestFirmware

from trayline.station.measurements import Verdict
from trayline.station.prompts import ScriptedPrompts
from trayline.station.testplan import Step
from trayline.station.testplan_config import parse_test_plan
from trayline.station.testrunner import StepResult, StepStatus, TestOutcome, run_test_plan


def plan(*steps: dict[str, Any], **top: Any) -> Any:
    return parse_test_plan({**top, "steps": list(steps)})


POWER = {
    "name": "power",
    "kind": "measure",
    "measurements": [
        {"name": "vbat", "unit": "V", "low": 3.6, "high": 4.3},
        {"name": "temp", "unit": "C", "low": 0, "high": 60},
    ],
}
RADIO = {
    "name": "radio",
    "kind": "run",
    "args": {"seconds": 2},
    "measurements": [{"name": "rssi", "unit": "dBm", "low": -105, "high": -20}],
}
GOOD = {"vbat": (3.91, "V"), "temp": (24.5, "C"), "radio.rssi": (-70, "dBm"), "radio.band": 20}


def run(fw: FakeTestFirmware, *steps: dict[str, Any], **kw: Any) -> TestOutcome:
    sleeps: list[float] = []
    outcome = run_test_plan(plan(*steps), fw, sleep=sleeps.append, **kw)
    return outcome


def test_all_pass_keeps_every_measurement_with_limits_and_unit() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD))
    outcome = run(fw, POWER, RADIO, {"name": "setup_done", "kind": "setup_done"})
    assert outcome.passed and outcome.reason is None
    assert outcome.hello is not None and outcome.hello.device_id == DEVICE_ID
    by_name = {m.name: m for m in outcome.measurements}
    assert set(by_name) == {"vbat", "temp", "rssi", "radio.band", "setup_done"}
    vbat = by_name["vbat"]
    assert (vbat.value, vbat.unit, vbat.low, vbat.high, vbat.verdict) == (
        3.91,
        "V",
        3.6,
        4.3,
        "pass",
    )
    assert by_name["radio.band"].verdict is Verdict.PASS  # streamed, not in the plan: recorded
    assert fw.setup_done_flag
    assert ("run", ("radio", {"seconds": 2})) in fw.calls
    assert [s.status for s in outcome.steps] == [StepStatus.PASSED] * 3
    assert outcome.steps[1].logs == ("starting radio",)


def test_limit_failure_says_which_value_and_limit_and_stops() -> None:
    fw = FakeTestFirmware(readings={**GOOD, "vbat": (3.41, "V")})
    outcome = run(fw, POWER, RADIO)
    assert not outcome.passed
    assert outcome.reason == "power: vbat 3.41 V below 3.6 V"
    assert [s.name for s in outcome.steps] == ["power"]  # stop_on_fail
    assert not any(c[0] == "run" for c in fw.calls)


def test_stop_on_fail_false_runs_every_step_and_keeps_first_reason() -> None:
    fw = FakeTestFirmware(readings={**GOOD, "vbat": (4.5, "V"), "radio.rssi": (-120, "dBm")})
    outcome = run_test_plan(parse_test_plan({"stop_on_fail": False, "steps": [POWER, RADIO]}), fw)
    assert outcome.reason == "power: vbat 4.5 V above 4.3 V"
    assert [s.status for s in outcome.steps] == [StepStatus.FAILED, StepStatus.FAILED]
    assert outcome.steps[1].reason == "rssi -120 dBm below -105 dBm"


def test_silent_firmware_fails_at_hello_in_plain_words() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD), silent={"hello"})
    outcome = run(fw, POWER)
    assert not outcome.passed
    assert outcome.reason == "no answer from the test firmware within 5 s"
    assert outcome.steps[0].kind == "hello"


def test_step_timeout_names_the_timeout_of_the_step() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD), silent={"run"})
    outcome = run(fw, POWER, {**RADIO, "timeout_s": 30})
    assert outcome.reason == "radio: test 'radio': no answer from the test firmware within 30 s"
    rssi = outcome.measurements[-1]
    assert rssi.name == "rssi" and rssi.verdict is Verdict.ERROR and rssi.low == -105


def test_garbage_lines_and_unknown_objects_are_ignored() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD), garbage=True)
    outcome = run(fw, POWER, RADIO)
    assert outcome.passed, outcome.reason
    assert {m.name for m in outcome.measurements} == {"vbat", "temp", "rssi", "radio.band"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([3.9], "vbat: value [3.9] is not a number, string or boolean"),
        ("3.9", "vbat: expected a number, got '3.9'"),
        (True, "vbat: expected a number, got true"),
        (math.nan, "vbat: not a number (NaN)"),
        (None, "vbat: no value"),
    ],
)
def test_wrong_values_from_the_device_are_errors(value: object, reason: str) -> None:
    fw = FakeTestFirmware(readings={**GOOD, "vbat": value})
    outcome = run(fw, POWER)
    assert outcome.reason == f"power: {reason}"
    assert outcome.measurements[0].verdict is Verdict.ERROR


def test_wrong_unit_is_an_error_not_a_comparison() -> None:
    fw = FakeTestFirmware(readings={**GOOD, "vbat": (3910, "mV")})
    outcome = run(fw, POWER)
    assert outcome.reason == "power: vbat reported in mV, the plan expects V"


def test_unknown_measurement_reported_by_firmware() -> None:
    fw = FakeTestFirmware(readings={"vbat": (3.9, "V")})
    outcome = run(fw, POWER)
    assert outcome.reason == "power: temp: unknown measurement (test firmware)"


def test_failing_routine_reason_comes_from_the_device() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD), failing_tests={"radio": "no SIM card"})
    outcome = run(fw, RADIO)
    assert outcome.reason == "radio: test 'radio' failed on the device: no SIM card"


def test_retries_rerun_a_failed_step_and_keep_earlier_reasons() -> None:
    fw = FakeTestFirmware(
        readings=dict(GOOD), sequence={"vbat": [(3.2, "V"), (3.3, "V"), (3.9, "V")]}
    )
    sleeps: list[float] = []
    p = plan({**POWER, "retries": 2, "retry_delay_s": 0.5})
    outcome = run_test_plan(p, fw, sleep=sleeps.append)
    assert outcome.passed
    step = outcome.steps[0]
    assert step.attempts == 3
    assert step.attempt_reasons == ("vbat 3.2 V below 3.6 V", "vbat 3.3 V below 3.6 V")
    assert sleeps == [0.5, 0.5]
    assert outcome.measurements[0].value == 3.9


def test_retries_exhausted_fail_with_the_last_reason() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD), sequence={"vbat": [(3.2, "V"), (3.3, "V")]})
    outcome = run(fw, {**POWER, "retries": 1})
    assert outcome.steps[0].attempts == 2
    assert outcome.reason == "power: vbat 3.3 V below 3.6 V"
    assert outcome.steps[0].attempt_reasons == ("vbat 3.2 V below 3.6 V",)


def test_port_gone_is_a_serial_problem() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD))
    fw.port_gone = True
    outcome = run(fw, POWER)
    assert outcome.reason is not None and outcome.reason.startswith("serial port problem:")


def test_other_firmware_and_wrong_device_are_refused() -> None:
    other = FakeTestFirmware(hello_answer={"hello": "tinker", "protocol": 1})
    assert run(other, POWER).reason == "not the trayline test firmware (hello: 'tinker')"
    newer = FakeTestFirmware(hello_answer={"hello": "trayline-testfw", "protocol": 2})
    assert "protocol 2" in (run(newer, POWER).reason or "")
    fw = FakeTestFirmware(readings=dict(GOOD))
    outcome = run(fw, POWER, expect_device_id="E00FCE68A1B2C3D4E5F60799")
    assert outcome.reason == (
        f"the test firmware reports device {DEVICE_ID}, this unit is e00fce68a1b2c3d4e5f60799"
    )
    assert run(fw, POWER, expect_device_id=DEVICE_ID.upper()).passed


def test_prompt_only_plan_needs_no_firmware() -> None:
    fw = FakeTestFirmware(silent={"hello"})
    step = {"name": "led", "kind": "prompt", "text": "Is the LED green?"}
    assert run(fw, step, prompts=ScriptedPrompts(["yes"])).passed
    outcome = run(fw, step, prompts=ScriptedPrompts(["NO"]))
    assert outcome.reason == "led: Is the LED green? — operator answered no"
    assert outcome.measurements[0].value is False and outcome.measurements[0].equals is True
    assert run(fw, step).reason == (
        "led: this plan asks the operator, and the station has no prompt source"
    )


def test_cloud_online_is_skipped_with_the_lines_reason() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD))
    why = "LTE Cat M1 cannot attach at a CM in China"
    outcome = run(fw, POWER, {"name": "online", "kind": "cloud_online"}, cloud_skip_reason=why)
    assert outcome.passed
    assert outcome.steps[1].status is StepStatus.SKIPPED and outcome.steps[1].reason == why


def test_observer_sees_each_attempt_and_result() -> None:
    seen: list[str] = []

    class Watch:
        def step_started(self, step: Step, attempt: int) -> None:
            seen.append(f"start {step.name} #{attempt}")

        def step_finished(self, result: StepResult) -> None:
            seen.append(f"end {result.name} {result.status}")

    fw = FakeTestFirmware(readings=dict(GOOD), sequence={"vbat": [(3.0, "V"), (3.9, "V")]})
    run(fw, {**POWER, "retries": 1}, observer=Watch())
    assert seen == ["start power #1", "start power #2", "end power passed"]


def test_measurement_json_shape_for_the_unit_record() -> None:
    fw = FakeTestFirmware(readings=dict(GOOD))
    data = run(fw, POWER).measurements[0].to_json()
    assert data == {
        "name": "vbat",
        "value": 3.91,
        "unit": "V",
        "low": 3.6,
        "high": 4.3,
        "equals": None,
        "regex": None,
        "verdict": "pass",
        "reason": None,
        "step": "power",
    }


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            {"ok": False, "error": "setup-done flag did not read back as 1"},
            "the test firmware did not set setup done: setup-done flag did not read back as 1",
        ),
        (
            {"error": "bad request: unknown cmd 'setup_done'"},
            "the test firmware did not set setup done: bad request: unknown cmd 'setup_done'",
        ),
    ],
)
def test_setup_done_refused(answer: dict[str, object], reason: str) -> None:
    fw = FakeTestFirmware(setup_done_answer=answer)
    outcome = run(fw, {"name": "setup_done", "kind": "setup_done"})
    assert outcome.reason == f"setup_done: {reason}"
    assert outcome.measurements[0].verdict is Verdict.ERROR


def test_firmware_refusing_a_command_fails_the_step() -> None:
    class OldFirmware(FakeTestFirmware):
        def run(self, test: str, args: Any, *, timeout: float) -> Any:
            return iter([{"error": "bad request: unknown cmd 'run'"}])

    outcome = run(OldFirmware(readings=dict(GOOD)), RADIO)
    assert (
        outcome.reason
        == "radio: the test firmware refused the request: bad request: unknown cmd 'run'"
    )


def test_a_routine_that_stalls_keeps_what_it_sent() -> None:
    readings: dict[str, object] = {"radio.rssi": (-70, "dBm"), "radio.qual": (-9, "dB")}
    fw = FakeTestFirmware(readings=readings, stall_after=1)
    step = {**RADIO, "measurements": [*RADIO["measurements"], {"name": "qual", "unit": "dB"}]}
    outcome = run(fw, step)
    rssi, qual = outcome.measurements
    assert (rssi.name, rssi.value, rssi.verdict) == ("rssi", -70, Verdict.PASS)
    assert (qual.name, qual.verdict) == ("qual", Verdict.ERROR)
    assert qual.reason == "qual: test 'radio': no answer from the test firmware within 5 s"
    assert outcome.reason == "radio: test 'radio': no answer from the test firmware within 5 s"

"""Run a test plan against one unit: hello, each step with its retries, one outcome.

Interface agreed with the station (slots and unit flow call this, nothing else)::

    outcome = run_test_plan(
        plan, channel,                # TestPlan, TestChannel (trayline.console's client)
        prompts=...,                  # PromptSource or None
        instruments=...,              # Instruments or None (VisaInstruments(plan.instruments))
        cloud_check=...,              # CloudPresence, or None to skip cloud_online steps
        cloud_skip_reason="...",      # why it is skipped (the line config's words)
        expect_device_id="e00f...",   # from silicon; a different hello device_id fails the unit
        observer=...,                 # optional: step started / finished, for the display
    )
    outcome.passed, outcome.reason            # bool, plain words or None
    outcome.measurements                      # every Measurement, with limits, unit, verdict
    outcome.steps                             # StepResult per step (attempts, duration, logs)
    outcome.hello                             # HelloInfo (device_id, device_os) or None

It is blocking: call it from the slot's worker thread (or ``asyncio.to_thread``).
It never raises for a device, operator, instrument or cloud problem; each is a
failed step with a reason. A plan without firmware steps skips the hello.

The sequencing is plain: steps in order; a failed step runs again up to its
``retries``; the unit stops at the first step that still fails unless the plan
says ``stop_on_fail = false``. Only the last attempt's measurements are kept
(``StepResult.attempts`` says how many there were, ``attempt_reasons`` why the
earlier ones failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from trayline.station.connectivity import CloudPresence
from trayline.station.instruments import Instruments
from trayline.station.measurements import Measurement
from trayline.station.prompts import PromptSource
from trayline.station.testchannel import HelloInfo, TestChannel, check_hello
from trayline.station.testplan import (
    CloudOnlineStep,
    InstrumentStep,
    MeasureStep,
    PromptStep,
    RunStep,
    SetupDoneStep,
    Step,
    TestPlan,
)
from trayline.station.teststeps import (
    Attempt,
    attempt_cloud_online,
    attempt_instrument,
    attempt_measure,
    attempt_prompt,
    attempt_run,
    attempt_setup_done,
    no_answer,
)


class StepStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    kind: str
    """A StepKind value, or ``hello`` for the firmware check before the steps."""
    status: StepStatus
    reason: str | None
    measurements: tuple[Measurement, ...]
    attempts: int
    duration_s: float
    attempt_reasons: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestOutcome:
    passed: bool
    reason: str | None
    """The first failure in plain words (``vbat 3.41 V below 3.6 V``); None when passed."""
    steps: tuple[StepResult, ...]
    hello: HelloInfo | None = None
    measurements: tuple[Measurement, ...] = field(init=False)

    __test__ = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "measurements", tuple(m for s in self.steps for m in s.measurements)
        )

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status is StepStatus.FAILED), None)


class PlanObserver(Protocol):
    def step_started(self, step: Step, attempt: int) -> None: ...

    def step_finished(self, result: StepResult) -> None: ...


@dataclass(frozen=True, slots=True)
class _Context:
    channel: TestChannel
    prompts: PromptSource | None
    instruments: Instruments | None
    cloud_check: CloudPresence | None
    cloud_skip_reason: str | None
    device_id: str | None
    sleep: Callable[[float], None]
    clock: Callable[[], float]


def run_test_plan(
    plan: TestPlan,
    channel: TestChannel,
    *,
    prompts: PromptSource | None = None,
    instruments: Instruments | None = None,
    cloud_check: CloudPresence | None = None,
    cloud_skip_reason: str | None = None,
    expect_device_id: str | None = None,
    observer: PlanObserver | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TestOutcome:
    """Run every step of ``plan`` on the unit behind ``channel``; see the module docstring."""
    hello: HelloInfo | None = None
    results: list[StepResult] = []
    if plan.needs_firmware:
        started = clock()
        hello_or_reason = _hello(channel, plan.hello_timeout_s, expect_device_id)
        if isinstance(hello_or_reason, str):
            result = StepResult(
                "hello", "hello", StepStatus.FAILED, hello_or_reason, (), 1, clock() - started
            )
            _notify_finished(observer, result)
            return TestOutcome(False, hello_or_reason, (result,))
        hello = hello_or_reason
    ctx = _Context(
        channel=channel,
        prompts=prompts,
        instruments=instruments,
        cloud_check=cloud_check,
        cloud_skip_reason=cloud_skip_reason,
        device_id=(hello.device_id if hello and hello.device_id else expect_device_id),
        sleep=sleep,
        clock=clock,
    )
    reason: str | None = None
    for step in plan.steps:
        result = _run_step(step, ctx, observer)
        results.append(result)
        if result.status is StepStatus.FAILED:
            reason = reason or f"{step.name}: {result.reason}"
            if plan.stop_on_fail:
                break
    return TestOutcome(reason is None, reason, tuple(results), hello)


def _hello(channel: TestChannel, timeout_s: float, expect: str | None) -> HelloInfo | str:
    try:
        answer = channel.hello(timeout=timeout_s)
    except TimeoutError:
        return no_answer(timeout_s)
    except OSError as exc:
        return f"serial port problem: {exc}"
    info = check_hello(answer)
    if (
        isinstance(info, HelloInfo)
        and expect
        and info.device_id
        and info.device_id != expect.lower()
    ):
        return f"the test firmware reports device {info.device_id}, this unit is {expect.lower()}"
    return info


def _run_step(step: Step, ctx: _Context, observer: PlanObserver | None = None) -> StepResult:
    """One step with its retries: the last attempt decides, earlier reasons are kept."""
    started = ctx.clock()
    reasons: list[str] = []
    attempt = Attempt()
    count = 0
    for count in range(1, step.retries + 2):
        if observer is not None:
            observer.step_started(step, count)
        attempt = _attempt(step, ctx)
        if attempt.passed or attempt.skipped:
            break
        reasons.append(attempt.first_problem or "failed")
        if count <= step.retries and step.retry_delay_s > 0:
            ctx.sleep(step.retry_delay_s)
    if attempt.skipped:
        status = StepStatus.SKIPPED
    else:
        status = StepStatus.PASSED if attempt.passed else StepStatus.FAILED
    reason = attempt.reason if attempt.skipped else attempt.first_problem
    result = StepResult(
        name=step.name,
        kind=step.kind.value,
        status=status,
        reason=None if status is StepStatus.PASSED else reason,
        measurements=attempt.measurements,
        attempts=count,
        duration_s=ctx.clock() - started,
        attempt_reasons=tuple(reasons[:-1] if status is StepStatus.FAILED else reasons),
        logs=attempt.logs,
    )
    _notify_finished(observer, result)
    return result


def _attempt(step: Step, ctx: _Context) -> Attempt:
    match step:
        case MeasureStep():
            return attempt_measure(ctx.channel, step)
        case RunStep():
            return attempt_run(ctx.channel, step)
        case SetupDoneStep():
            return attempt_setup_done(ctx.channel, step)
        case PromptStep():
            return attempt_prompt(ctx.prompts, step)
        case InstrumentStep():
            return attempt_instrument(ctx.instruments, step)
        case CloudOnlineStep():
            if ctx.cloud_check is None:
                why = ctx.cloud_skip_reason or "no cloud check configured for this line"
                return Attempt(reason=why, skipped=True)
            return attempt_cloud_online(ctx.cloud_check, ctx.device_id, step, ctx.sleep, ctx.clock)


def _notify_finished(observer: PlanObserver | None, result: StepResult) -> None:
    if observer is not None:
        observer.step_finished(result)

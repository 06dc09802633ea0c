"""One attempt of one test-plan step, per kind: talk to one interface, judge, explain.

Each function here does the I/O of a single attempt through the interface it is
given (test channel, prompt source, instruments, cloud presence) and returns an
:class:`Attempt`: the measurements judged and, when the attempt did not pass,
the reason in the words an operator reads on the station screen. Retries,
sequencing and the final verdict are the runner's (``testrunner``).

Nothing here raises for a device or operator problem: a timeout, a port that
went away, garbage from the firmware, an instrument that does not answer — each
is an attempt with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from trayline.station.connectivity import CloudCheckError, CloudPresence, wait_until_online
from trayline.station.instruments import (
    InstrumentError,
    Instruments,
    aggregate,
    parse_scpi_number,
)
from trayline.station.measurements import (
    Measurement,
    MeasurementSpec,
    Verdict,
    errored,
    measure,
)
from trayline.station.prompts import Prompt, PromptError, PromptSource
from trayline.station.testchannel import (
    Done,
    Log,
    Reading,
    Refused,
    TestChannel,
    read_record,
)
from trayline.station.testplan import (
    CloudOnlineStep,
    InstrumentStep,
    MeasureStep,
    PromptStep,
    RunStep,
    SetupDoneStep,
)

MAX_LOG_LINES = 200


@dataclass(frozen=True, slots=True)
class Attempt:
    measurements: tuple[Measurement, ...] = ()
    reason: str | None = None
    """Why the attempt did not pass (None: it passed if every measurement passed)."""
    logs: tuple[str, ...] = ()
    skipped: bool = False

    @property
    def passed(self) -> bool:
        return (
            self.reason is None
            and not self.skipped
            and all(m.verdict is Verdict.PASS for m in self.measurements)
        )

    @property
    def first_problem(self) -> str | None:
        if self.reason is not None:
            return self.reason
        return next((m.reason for m in self.measurements if m.verdict is not Verdict.PASS), None)


def no_answer(timeout_s: float, what: str = "the test firmware") -> str:
    return f"no answer from {what} within {timeout_s:g} s"


def _channel_problem(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return no_answer(timeout_s)
    return f"serial port problem: {exc}"


@dataclass(slots=True)
class _Stream:
    """What a measure/run answer held so far (kept when the answer stops half-way)."""

    measured: dict[str, Measurement] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    refused: str | None = None
    """The firmware answered ``{"error": ...}``: it did not understand the command."""
    failed: str | None = None
    """The firmware ended with ``{"done": false, "error": ...}``."""


def _collect(
    records: Iterable[object],
    step: str,
    specs: tuple[MeasurementSpec, ...],
    extra_prefix: str,
    into: _Stream,
) -> None:
    """Judge streamed readings into ``into``: expected ones by their spec, others as they came.

    Filling ``into`` as the answer arrives keeps what was read when the channel
    raises mid-answer (a routine that stalls after two of three readings).
    """
    expected = {spec.name: spec for spec in specs}
    for obj in records:
        record = read_record(obj)
        if isinstance(record, Reading):
            spec = expected.get(record.name)
            # names the plan did not ask for come from the device: bounded like plan names
            key = record.name if spec is not None else f"{extra_prefix}{record.name}"[:64]
            spec = spec or MeasurementSpec(name=key)
            if record.error is not None:
                why = f"{record.name}: {record.error} (test firmware)"
                into.measured[key] = errored(spec, why, step=step)
            else:
                into.measured[key] = measure(spec, record.value, record.unit, step=step)
        elif isinstance(record, Log) and len(into.logs) < MAX_LOG_LINES:
            into.logs.append(record.text)
        elif isinstance(record, Refused):
            into.refused = f"the test firmware refused the request: {record.error}"
            return
        elif isinstance(record, Done):
            if not record.ok:
                into.failed = record.error or "no reason given"
            return


def _with_missing(
    measured: Iterable[Measurement], specs: tuple[MeasurementSpec, ...], step: str, why: str
) -> tuple[Measurement, ...]:
    """Measurements in plan order, each expected one not reported errored with ``why``."""
    measured = list(measured)
    names = {m.name for m in measured}
    missing = [errored(s, f"{s.name}: {why}", step=step) for s in specs if s.name not in names]
    order = {s.name: i for i, s in enumerate(specs)}
    ranked = sorted(measured, key=lambda m: order.get(m.name, len(order)))
    return (*ranked, *missing)


def attempt_measure(channel: TestChannel, step: MeasureStep) -> Attempt:
    names = [spec.name for spec in step.measurements]
    got = _Stream()
    reason: str | None = None
    try:
        records = channel.measure(names, timeout=step.timeout_s)
        _collect(records, step.name, step.measurements, "", got)
    except (TimeoutError, OSError) as exc:
        reason = _channel_problem(exc, step.timeout_s)
    if got.failed is not None:
        reason = f"measure failed on the device: {got.failed}"
    reason = got.refused or reason
    # Only the names asked for are kept: a measure answer that adds others is noise.
    wanted = [m for m in got.measured.values() if m.name in set(names)]
    missing = reason if reason is not None else "the test firmware did not report it"
    return Attempt(
        _with_missing(wanted, step.measurements, step.name, missing), reason, tuple(got.logs)
    )


def attempt_run(channel: TestChannel, step: RunStep) -> Attempt:
    got = _Stream()
    reason: str | None = None
    try:
        records = channel.run(step.test, dict(step.args), timeout=step.timeout_s)
        _collect(records, step.name, step.measurements, f"{step.name}.", got)
    except (TimeoutError, OSError) as exc:
        reason = f"test {step.test!r}: {_channel_problem(exc, step.timeout_s)}"
    if got.failed is not None:
        reason = f"test {step.test!r} failed on the device: {got.failed}"
    reason = got.refused or reason
    missing = reason if reason is not None else "the test firmware did not report it"
    return Attempt(
        _with_missing(got.measured.values(), step.measurements, step.name, missing),
        reason,
        tuple(got.logs),
    )


def attempt_setup_done(channel: TestChannel, step: SetupDoneStep) -> Attempt:
    spec = step.measurement
    try:
        answer = channel.setup_done(timeout=step.timeout_s)
    except (TimeoutError, OSError) as exc:
        why = _channel_problem(exc, step.timeout_s)
        return Attempt((errored(spec, why, step=step.name),), why)
    if not isinstance(answer, Mapping):
        why = f"the test firmware answered setup_done with {answer!r}"
        return Attempt((errored(spec, why, step=step.name),), why)
    if answer.get("ok") is True:
        return Attempt((measure(spec, True, step=step.name),))
    error = answer.get("error")
    said = str(error) if error else repr(dict(answer))
    why = f"the test firmware did not set setup done: {said}"
    return Attempt((errored(spec, why, step=step.name),), why)


def attempt_prompt(prompts: PromptSource | None, step: PromptStep) -> Attempt:
    spec = step.measurement
    if prompts is None:
        why = "this plan asks the operator, and the station has no prompt source"
        return Attempt((errored(spec, why, step=step.name),), why)
    try:
        answer = prompts.ask(Prompt(text=step.text, step=step.name, timeout_s=step.timeout_s))
    except TimeoutError:
        why = no_answer(step.timeout_s, "the operator")
        return Attempt((errored(spec, why, step=step.name),), why)
    except PromptError as exc:
        return Attempt((errored(spec, str(exc), step=step.name),), str(exc))
    result = measure(spec, answer, step=step.name)
    if result.verdict is Verdict.FAIL:
        said = "yes" if answer else "no"
        result = _with_reason(result, f"{step.text} — operator answered {said}")
    return Attempt((result,))


def attempt_instrument(instruments: Instruments | None, step: InstrumentStep) -> Attempt:
    spec = step.measurement
    if instruments is None:
        why = f"this plan needs instrument {step.instrument!r}, and the station has none"
        return Attempt((errored(spec, why, step=step.name),), why)
    readings: list[float] = []
    for _ in range(step.samples):
        try:
            reply = instruments.query(
                step.instrument, step.query, setup=step.setup, timeout_s=step.timeout_s
            )
        except TimeoutError:
            why = no_answer(step.timeout_s, f"instrument {step.instrument}")
            return Attempt((errored(spec, why, step=step.name),), why)
        except InstrumentError as exc:
            return Attempt((errored(spec, str(exc), step=step.name),), str(exc))
        try:
            readings.append(parse_scpi_number(reply) * step.scale)
        except ValueError as exc:
            why = f"{step.instrument} answered {step.query} with {exc}"
            return Attempt((errored(spec, why, step=step.name),), why)
    return Attempt((measure(spec, aggregate(readings, step.aggregate), step=step.name),))


def attempt_cloud_online(
    presence: CloudPresence,
    device_id: str | None,
    step: CloudOnlineStep,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> Attempt:
    spec = step.measurement
    if device_id is None:
        why = "the device ID is not known (no hello from the test firmware, none given)"
        return Attempt((errored(spec, why, step=step.name),), why)
    try:
        result = wait_until_online(
            presence,
            device_id,
            timeout_s=step.timeout_s,
            poll_interval_s=step.poll_interval_s,
            clock=clock,
            sleep=sleep,
        )
    except CloudCheckError as exc:
        return Attempt((errored(spec, str(exc), step=step.name),), str(exc))
    if result.online:
        return Attempt((measure(spec, True, step=step.name),))
    why = f"the cloud did not report {device_id} online within {step.timeout_s:g} s"
    if result.last_problem:
        why = f"{why} ({result.last_problem})"
    return Attempt((_with_reason(measure(spec, False, step=step.name), why),), why)


def _with_reason(m: Measurement, reason: str) -> Measurement:
    return replace(m, reason=reason)

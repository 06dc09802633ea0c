"""One unit through one slot: open its programmer, then step it from its last status to the end.

:func:`work_unit` is what a slot's thread runs for each unit it is given. It
takes the unit's lease, opens the slot's programmer, reads the device ID from
silicon and checks it against the tray list (and against the ID recorded
earlier, on a resumed unit), then runs the steps :func:`trayline.station.flow
.next_step` names until the unit is ready or failed. Each completed step is one
store transaction (status + event); flashing records its intent before the
first byte (:mod:`trayline.firmware.flashing`). What a step learns that the next
one must have on disk before it touches the device goes into that step's intent
transaction instead of a flush of its own: the device ID read from silicon (with
the test flash's intent) and a passed test (with the production flash's intent;
the device is only read in between). Nothing is kept in memory that a restarted
station would need: a resumed unit starts from its record and the device, and a
crash loses at most the step in flight.

Failures become a ``failed`` status with a reason in plain words; the worker
never raises for a unit's problem, so one bad board cannot stop its slot.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.orm import Session

from trayline.firmware.bundle import BundleError
from trayline.firmware.flashing import FlashFailed, FlashReport, flash_bundle
from trayline.programmers.base import (
    DeviceNotAnswering,
    ProbeNotFound,
    Programmer,
    ProgrammerError,
    ProtectedDevice,
    SupportsSetupDone,
    TargetNotHalted,
    VerifyFailed,
)
from trayline.settings.line import LineConfig, SlotSpec
from trayline.station.flow import TERMINAL, Status, Step, next_step
from trayline.station.labels import LabelError
from trayline.station.lease import LEASE_TTL, abandoned
from trayline.store.db import Store
from trayline.store.flash_records import InTransaction
from trayline.store.models.base import utcnow
from trayline.store.unit_sessions import writing
from trayline.store.units import (
    DeviceClaimed,
    EventContext,
    LeaseLost,
    UnitView,
    add_event,
    advance,
    advance_in,
    finish_attempt,
    finish_attempt_in,
    identify,
    identify_in,
    lease_by_serial,
    open_attempt,
    release_lease,
    take_lease,
    unit_by_serial,
)

__all__ = [
    "SlotDevice",
    "StepFailed",
    "TestRequest",
    "TestResult",
    "Tester",
    "UnitWork",
    "work_unit",
]


BUNDLE_PROBLEM = "firmware bundle problem"
_SETUP_BY_FIRMWARE = "setup-done flag is set by the test firmware (the probe cannot reach it)"
ID_MISMATCH = "silicon ID mismatch"
_CATEGORIES: tuple[tuple[type[ProgrammerError], str], ...] = (
    (DeviceNotAnswering, "device not answering"),
    (VerifyFailed, "flash did not verify"),
    (FlashFailed, "flash did not verify"),
    (ProtectedDevice, "device protected"),
    (ProbeNotFound, "probe not found"),
    (TargetNotHalted, "target did not connect"),
)
CATEGORIES = (
    *(words for _, words in _CATEGORIES),
    "programmer problem",
    BUNDLE_PROBLEM,
    ID_MISMATCH,
)
"""Failure reasons the station writes start with one of these (the rest is the detail)."""


class StepFailed(Exception):
    """A step could not complete; the message is the unit's failure reason."""


@dataclass(frozen=True, slots=True)
class SlotDevice:
    """What a slot reaches for one unit: the backend, the probe, the test-firmware port."""

    backend: str
    probe_id: str
    port: str | None


@dataclass(frozen=True, slots=True)
class TestRequest:
    serial: str
    device_id: str
    slot: str
    port: str | None
    attempt: int
    programmer: Programmer

    __test__ = False


@dataclass(frozen=True, slots=True)
class TestResult:
    passed: bool
    reason: str | None
    measurements: Sequence[dict[str, Any]] = field(default=())

    __test__ = False


Tester = Callable[[TestRequest], TestResult]
ProgressFn = Callable[[str, str, str], None]
"""(slot, serial, what is happening now) — for the operator's panel."""


class Opener(Protocol):
    def __call__(self, device: SlotDevice, slot: SlotSpec, platform_id: int) -> Programmer: ...


@dataclass(slots=True)
class UnitWork:
    """Everything a slot needs to work units; shared by the slots of one station."""

    store: Store
    config: LineConfig
    owner: str
    operator: str | None
    tester: Tester
    opener: Opener
    locate: Callable[[SlotSpec, UnitView], SlotDevice]
    progress: ProgressFn = lambda _slot, _serial, _what: None
    label: Callable[[UnitView], str] | None = None
    """Print a ready unit's label (the optional last step); returns where it went."""
    warn: ProgressFn = lambda _slot, _serial, _what: None
    """A problem the operator must see that does not fail the unit (a label not printed)."""


def _firmware_entry(report: FlashReport) -> dict[str, Any]:
    modules = [f"{m['function']} {m['index']} v{m['version']}" for m in report.written]
    modules += [f"{m['function']} {m['index']} v{m['version']}" for m in report.skipped]
    return {
        "bundle": report.bundle,
        "digest": report.digest,
        "modules": sorted(modules),
        "written": len(report.written),
        "record_id": report.record_id,
    }


class _Unit:
    """The state of one unit's run in one slot (lives for one :func:`work_unit` call)."""

    def __init__(self, work: UnitWork, slot: SlotSpec, view: UnitView) -> None:
        self.work = work
        self.slot = slot
        self.view = view
        self.ctx = EventContext(work.config.station, slot.name, work.operator)
        self.leased_at = time.monotonic()
        self.unrecorded_id: str | None = None
        """Read from silicon, not yet written: it goes with the next flash intent."""
        self.unrecorded_test: InTransaction | None = None
        """A passed test, not yet written: it goes with the production flash's intent."""

    def renew_lease(self) -> None:
        """Renew the lease once a quarter of its time has passed (one write, not one per step)."""
        now = time.monotonic()
        if now - self.leased_at > LEASE_TTL.total_seconds() / 4:
            take_lease(self.work.store, self.view.id, self.work.owner, ttl=LEASE_TTL)
            self.leased_at = now

    def transition(
        self,
        status: Status,
        detail: str,
        then: tuple[tuple[str, str], ...] = (),
        attempt: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """The arguments of :func:`advance` for this unit (a final status frees the lease)."""
        if status in TERMINAL or any(s in TERMINAL for s, _ in then):
            fields.update(lease_owner=None, lease_until=None)
        return {
            "status": status,
            "owner": self.work.owner,
            "ctx": self.ctx,
            "detail": detail,
            "fields": fields or None,
            "then": then,
            "open_attempt": attempt,
        }

    def advance(
        self,
        status: Status,
        detail: str,
        then: tuple[tuple[str, str], ...] = (),
        attempt: bool = False,
        **fields: Any,
    ) -> None:
        args = self.transition(status, detail, then, attempt, **fields)
        self.view = advance(self.work.store, self.view.id, **args)

    def identify(self, prog: Programmer) -> str:
        device_id = str(prog.read_device_id())
        expected = self.view.device_id or self.view.expected_device_id
        if expected and expected != device_id:
            source = "recorded for" if self.view.device_id else "in the tray list for"
            raise StepFailed(
                f"{ID_MISMATCH}: the device on {self.slot.name} reads {device_id}, "
                f"the ID {source} {self.view.serial_number} is {expected} — wrong board "
                "on the fixture or wrong sticker"
            )
        if self.view.device_id != device_id:  # else a resumed unit, still the same board
            self.unrecorded_id = device_id
        return device_id

    def record_identity(self) -> None:
        """Write the device ID read from silicon now (a step that is not a flash is next)."""
        if self.unrecorded_id is None:
            return
        try:
            identify(self.work.store, self.view.id, self.unrecorded_id, ctx=self.ctx)
        except DeviceClaimed as exc:
            raise StepFailed(str(exc)) from None
        self.unrecorded_id = None

    def record_test(self) -> None:
        """Write a passed test now (a failure came before the production flash's intent)."""
        if self.unrecorded_test is None:
            return
        with writing(self.work.store) as session:
            self.unrecorded_test(session)
        self.unrecorded_test = None

    def writes_with_intent(self) -> InTransaction | None:
        """What was learnt but not yet written, for the transaction of the next flash
        intent: on disk before the device is written, with no flush of its own. The device
        ID read from silicon (first flash), then a passed test (production flash)."""
        device_id, test = self.unrecorded_id, self.unrecorded_test
        if device_id is None and test is None:
            return None

        def write(session: Session) -> None:
            if device_id is not None:
                identify_in(session, self.view.id, device_id, ctx=self.ctx)
            if test is not None:
                test(session)
            # In the intent's transaction now: if it fails to commit, the error ends the
            # unit's run and a restarted station resumes it from what is on disk.
            self.unrecorded_id = self.unrecorded_test = None

        return write

    def flash(
        self,
        prog: Programmer,
        role: str,
        bundle: str,
        step: Callable[[dict[str, Any], FlashReport], dict[str, Any]],
    ) -> None:
        """Flash ``bundle``; the unit's next status (``step(firmware, report)`` gives the
        :meth:`transition`) is written in the transaction that completes the flash record."""
        done: list[UnitView] = []

        def then(report: FlashReport) -> InTransaction:
            firmware = dict(self.view.firmware)
            firmware[role] = _firmware_entry(report)
            args = step(firmware, report)
            known = self.view  # since the lease: this slot links no parts
            return lambda session: done.append(advance_in(session, known.id, known=known, **args))

        try:
            flash_bundle(
                self.work.store,
                prog,
                bundle,
                role=role,
                unit_id=self.view.id,
                slot=self.slot.name,
                then=then,
                with_intent=self.writes_with_intent(),
            )
        except DeviceClaimed as exc:
            raise StepFailed(str(exc)) from None
        self.view = done[-1]

    def after_verified(self, prog: Programmer) -> tuple[tuple[str, str], ...]:
        """The steps after ``verified``, recorded with it in one flush.

        A probe that sets the setup-done flag sets it here, before the production
        flash's result is committed: the flash's intent (on disk) covers it, and a
        crash before that commit repeats the production step — nothing written, the
        flag set again (idempotent). If the probe fails to set it, the unit stops at
        ``verified`` and the setup-done step of its own tries again, and fails the
        unit with the probe's reason if it fails again.
        """
        if not self.work.config.sku.setup_done_applies:
            return ((Status.READY, "ready to provision"),)
        detail = _SETUP_BY_FIRMWARE
        if isinstance(prog, SupportsSetupDone):
            try:
                done = prog.set_setup_done(True)
            except ProgrammerError:
                return ()
            detail = "setup-done flag set" if done else "setup done not needed (Device OS)"
        return ((Status.SETUP_DONE, detail), (Status.READY, "ready to provision"))

    def run_step(self, step: Step, to: Status, prog: Programmer, device_id: str) -> None:
        cfg = self.work.config
        if step not in (Step.FLASH_TEST, Step.FLASH_PRODUCTION):
            self.record_identity()
            self.record_test()
        if step is Step.FLASH_TEST:
            test_detail = f"test firmware {cfg.bundles.test} on the device"
            self.flash(
                prog,
                "test",
                cfg.bundles.test,
                lambda fw, _report: self.transition(to, test_detail, attempt=True, firmware=fw),
            )
        elif step is Step.TEST:
            self.test(prog, device_id)
        elif step is Step.FLASH_PRODUCTION:
            # The flashing service reset the device and read every module back: that read-back
            # is the verification, recorded as its own step in the same transaction (with the
            # steps after it that touch no device). A unit found at production_flashed after a
            # crash is verified by reading it again.
            def production(fw: dict[str, Any], report: FlashReport) -> dict[str, Any]:
                verified = (
                    Status.VERIFIED,
                    f"{len(report.written) + len(report.skipped)} modules of "
                    f"{cfg.bundles.production} read back after reset",
                )
                return self.transition(
                    to,
                    f"production firmware {cfg.bundles.production} written",
                    then=(verified, *self.after_verified(prog)) if report.verified else (),
                    firmware=fw,
                )

            self.flash(prog, "production", cfg.bundles.production, production)
        elif step is Step.VERIFY:
            self.verify(prog)
        elif step is Step.SETUP_DONE:
            if isinstance(prog, SupportsSetupDone):
                done = prog.set_setup_done(True)
                detail = "setup-done flag set" if done else "setup done not needed (Device OS)"
            else:
                detail = _SETUP_BY_FIRMWARE
            self.advance(to, detail, then=((Status.READY, "ready to provision"),))
        else:
            self.advance(to, "ready to provision")

    def test(self, prog: Programmer, device_id: str) -> None:
        # Opened with the status before it (in the view that transaction returned), or
        # continued/opened here after a resume.
        number = self.view.running_attempt or open_attempt(self.work.store, self.view.id, self.ctx)
        request = TestRequest(
            self.view.serial_number,
            device_id,
            self.slot.name,
            self.work.locate(self.slot, self.view).port,
            number,
            prog,
        )
        result = self.work.tester(request)
        if result.passed:
            self.defer_passed_test(number, result)
            return
        reason = result.reason or "the test plan failed"
        view = finish_attempt(
            self.work.store,
            self.view.id,
            number,
            outcome="fail",
            reason=result.reason,
            measurements=list(result.measurements),
            transition=(Status.FAILED.value, reason, reason),
            owner=self.work.owner,
            ctx=self.ctx,
        )
        if view is not None:
            self.view = view

    def defer_passed_test(self, number: int, result: TestResult) -> None:
        """A passed test is written with the production flash's intent, its next write
        (one transaction and one flush, not two): the device is only read in between. A
        crash before that commit finds the unit at ``test_flashed`` with the attempt
        running, and the test is run again under the same number — the step in flight,
        nothing more."""
        measurements = list(result.measurements)
        ended, owner, ctx, unit_id = utcnow(), self.work.owner, self.ctx, self.view.id

        def write(session: Session) -> None:
            finish_attempt_in(
                session,
                unit_id,
                number,
                outcome="pass",
                reason=result.reason,
                measurements=measurements,
                transition=(Status.TESTED.value, f"attempt {number} passed", None),
                owner=owner,
                ctx=ctx,
                finished_at=ended,
            )

        self.unrecorded_test = write
        self.view = replace(
            self.view, status=Status.TESTED.value, open_attempt=False, running_attempt=None
        )

    def verify(self, prog: Programmer) -> None:
        """Re-read the device against the production bundle (the flashing service's own
        plan and read-back after reset): every module must already be there."""
        bundle = self.work.config.bundles.production
        report = flash_bundle(
            self.work.store,
            prog,
            bundle,
            role="production",
            unit_id=self.view.id,
            slot=self.slot.name,
        )
        if report.written:
            names = ", ".join(str(m["function"]) for m in report.written)
            raise StepFailed(
                f"production firmware did not hold: {names} differed when verified (rewritten; "
                "retest the unit)"
            )
        self.advance(
            Status.VERIFIED, f"{len(report.skipped)} modules of {bundle} read back after reset"
        )


def _fail(unit: _Unit, reason: str) -> None:
    with contextlib.suppress(StepFailed):
        unit.record_identity()  # a unit that failed before its first flash intent
    with contextlib.suppress(LeaseLost):
        unit.record_test()  # a passed test, then a failure before the production intent
    with contextlib.suppress(LeaseLost):
        unit.view = advance(
            unit.work.store,
            unit.view.id,
            Status.FAILED,
            owner=unit.work.owner,
            ctx=unit.ctx,
            detail=reason,
            reason=reason,
            fields={"lease_owner": None, "lease_until": None},
        )


def work_unit(work: UnitWork, slot: SlotSpec, serial: str) -> UnitView | None:
    """Run one unit to ready or failed in ``slot``; None when another process holds it."""
    view = lease_by_serial(work.store, serial, work.owner, ttl=LEASE_TTL, abandoned=abandoned)
    if view is None:
        return None
    unit = _Unit(work, slot, view)
    try:
        _run(unit)
    except LeaseLost:
        return unit_by_serial(work.store, serial)
    finally:
        if unit.view.lease_owner is not None:  # the last step releases it with its own write
            release_lease(work.store, view.id, work.owner)
    return unit.view


def _run(unit: _Unit) -> None:
    work, slot = unit.work, unit.slot
    setup = work.config.sku.setup_done_applies
    if next_step(unit.view.status, setup_done_applies=setup) is None:
        return
    serial = unit.view.serial_number
    try:
        device = work.locate(slot, unit.view)
        work.progress(slot.name, serial, "connecting")
        with work.opener(device, slot, work.config.sku.platform_id) as prog:
            device_id = unit.identify(prog)
            while (nxt := next_step(unit.view.status, setup_done_applies=setup)) is not None:
                step, to = nxt
                work.progress(slot.name, serial, str(step))
                unit.renew_lease()
                unit.run_step(step, to, prog, device_id)
        if unit.view.status == Status.READY and work.label is not None:
            _print_label(unit)
    except StepFailed as exc:
        _fail(unit, str(exc))
    except ProgrammerError as exc:
        _fail(unit, f"{_category(exc)}: {exc}")
    except BundleError as exc:
        _fail(unit, f"{BUNDLE_PROBLEM}: {exc}")


def _print_label(unit: _Unit) -> None:
    """The label goes out after the unit is ready; a printer problem is said, not a failure."""
    work, view = unit.work, unit.view
    assert work.label is not None
    try:
        where = work.label(view)
    except LabelError as exc:
        add_event(work.store, view.id, "label_failed", ctx=unit.ctx, detail=str(exc))
        work.warn(unit.slot.name, view.serial_number, f"label not printed: {exc}")
        return
    add_event(work.store, view.id, "label", ctx=unit.ctx, detail=f"label sent to {where}")


def _category(exc: ProgrammerError) -> str:
    for kind, words in _CATEGORIES:
        if isinstance(exc, kind):
            return words
    return "programmer problem"

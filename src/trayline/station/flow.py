"""The unit state machine: which step comes next, and what each state means.

A unit walks::

    scanned → parts_linked → test_flashed → tested → production_flashed → verified
            → (setup_done, Gen 3 only) → ready

and can stop in ``failed`` from any working state, keeping its reason. The
status stored on the unit is the last step that *completed*; the next step is a
pure function of it (:func:`next_step`), so a station killed anywhere starts
again from the record, re-reading the device (ID, modules) instead of trusting
what a dead process believed. Every step is idempotent on the device: flashing
writes only what differs, a test attempt that never finished is run again
under the same attempt number.

This module is pure (no I/O) so the worker, the runner, the crash tests and the
web page share one table.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Status",
    "Step",
    "next_step",
    "retest_allowed",
]


class Status(StrEnum):
    SCANNED = "scanned"
    PARTS_LINKED = "parts_linked"
    TEST_FLASHED = "test_flashed"
    TESTED = "tested"
    PRODUCTION_FLASHED = "production_flashed"
    VERIFIED = "verified"
    SETUP_DONE = "setup_done"
    READY = "ready"
    FAILED = "failed"


class Step(StrEnum):
    """What a slot does to move a unit out of a status."""

    FLASH_TEST = "flash test firmware"
    TEST = "run the test plan"
    FLASH_PRODUCTION = "flash production firmware"
    VERIFY = "verify production firmware"
    SETUP_DONE = "set setup done"
    FINISH = "mark ready"


TERMINAL = frozenset({Status.READY, Status.FAILED})
ACTIVE = frozenset(
    {
        Status.PARTS_LINKED,
        Status.TEST_FLASHED,
        Status.TESTED,
        Status.PRODUCTION_FLASHED,
        Status.VERIFIED,
        Status.SETUP_DONE,
    }
)
"""States a slot works on: a unit found in one at start-up is resumed."""

_NEXT: dict[Status, tuple[Step, Status]] = {
    Status.PARTS_LINKED: (Step.FLASH_TEST, Status.TEST_FLASHED),
    Status.TEST_FLASHED: (Step.TEST, Status.TESTED),
    Status.TESTED: (Step.FLASH_PRODUCTION, Status.PRODUCTION_FLASHED),
    Status.PRODUCTION_FLASHED: (Step.VERIFY, Status.VERIFIED),
    Status.SETUP_DONE: (Step.FINISH, Status.READY),
}


def next_step(status: str, *, setup_done_applies: bool) -> tuple[Step, Status] | None:
    """The step to run from ``status`` and the status it leads to; None when nothing is left."""
    current = Status(status)
    if current is Status.VERIFIED:
        if setup_done_applies:
            return (Step.SETUP_DONE, Status.SETUP_DONE)
        return (Step.FINISH, Status.READY)
    return _NEXT.get(current)


def retest_allowed(status: str, attempts: int, retest_limit: int) -> bool:
    """A failed unit may run again while it has used at most ``retest_limit`` retests."""
    return Status(status) is Status.FAILED and attempts <= retest_limit

"""What is left to do in a provisioning job: a pure function of its journal.

A job takes each device through the guide's provisioning steps, in this order::

    group   make sure the product group exists (once per job)
    import  add the device to the product (bulk file upload, chunked)
    locate  learn the device ID of devices given only by serial (product listing)
    join    add devices to the group (batch PUT action=groups, chunked)
    serial  learn the serial of devices given only by ID, to name them (group listing)
    name    rename each device to its serial number
    claim   claim each device (only with --claim each)
    verify  list the group and check membership, name and ownership

:func:`next_step` looks only at the journal (the statuses stored per device
and per job) and says which step runs next and for which devices, so the engine
can be killed at any moment and the same command picks up exactly where the
journal says it stopped. A status is one of:

``pending``  not done yet
``sent``     a request covering it may have gone out; replayed on resume (every
             request trayline sends is idempotent, so replaying is safe)
``done``     the cloud confirmed it
``error``    it failed transiently after all retries; tried again on the next run
``failed``   it failed for good (the device's ``failure`` says why)
``skipped``  it does not apply (no group, naming off, claiming off, …)

This module does no I/O and imports nothing but the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ACTIVE",
    "FAILURE_REASONS",
    "DeviceState",
    "JobState",
    "Step",
    "StepWork",
    "estimate_requests",
    "next_step",
    "summarise",
]


class Step(StrEnum):
    GROUP = "group"
    IMPORT = "import"
    LOCATE = "locate"
    JOIN = "join"
    SERIAL = "serial"
    NAME = "name"
    CLAIM = "claim"
    VERIFY = "verify"


FAILURE_REASONS: dict[str, str] = {
    "another-product": "already in another product",
    "platform-mismatch": "platform does not match the product (e.g. a Boron into a B-SoM product)",
    "device-protected": "Device Protection is on: cannot import into a non-protected product",
    "unknown-id": "unknown to the Particle Cloud (check for a typo)",
    "rejected": (
        "refused by the cloud: unknown ID, in another product, or wrong platform "
        "(the API does not say which)"
    ),
    "not-listed": "imported, but the product's device list does not show it",
    "owned-by-someone-else": "claimed by another account",
}
"""A device's permanent ``failure`` code and the words the report uses for it."""

ACTIVE = frozenset({"pending", "sent", "error"})
"""Statuses that still need work."""


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One device row of the journal, as plain data."""

    key: int
    identifier: str
    id_kind: str
    device_id: str | None
    serial: str | None
    imported: str
    grouped: str
    named: str
    claimed: str
    verified: str
    failure: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None


@dataclass(frozen=True, slots=True)
class JobState:
    """The job row and its devices, as plain data."""

    group: str | None
    group_status: str
    naming: bool
    claim_mode: str
    devices: tuple[DeviceState, ...]


@dataclass(frozen=True, slots=True)
class StepWork:
    """The next step and the devices it covers (empty for the job-level group step)."""

    step: Step
    devices: tuple[DeviceState, ...]


def _live(job: JobState) -> Iterable[DeviceState]:
    return (d for d in job.devices if not d.failed)


def next_step(job: JobState) -> StepWork | None:
    """The next step to run, or ``None`` when every device is finished or failed."""
    if job.group is not None and job.group_status in ACTIVE:
        return StepWork(Step.GROUP, ())
    live = tuple(_live(job))
    todo = tuple(d for d in live if d.imported in ACTIVE)
    if todo:
        return StepWork(Step.IMPORT, todo)
    imported = tuple(d for d in live if d.imported == "done")
    todo = tuple(d for d in imported if d.device_id is None)
    if todo:
        return StepWork(Step.LOCATE, todo)
    todo = tuple(d for d in imported if d.grouped in ACTIVE)
    if todo:
        return StepWork(Step.JOIN, todo)
    todo = tuple(d for d in imported if job.naming and d.named in ACTIVE and d.serial is None)
    if todo:
        return StepWork(Step.SERIAL, todo)
    todo = tuple(d for d in imported if d.named in ACTIVE)
    if todo:
        return StepWork(Step.NAME, todo)
    todo = tuple(d for d in imported if d.claimed in ACTIVE)
    if todo:
        return StepWork(Step.CLAIM, todo)
    todo = tuple(d for d in imported if d.verified in ACTIVE)
    if todo:
        return StepWork(Step.VERIFY, todo)
    return None


def summarise(job: JobState) -> dict[str, int]:
    """Counts a person wants to see: devices provisioned, failed, still to do."""
    provisioned = sum(1 for d in job.devices if not d.failed and d.verified == "done")
    failed = sum(1 for d in job.devices if d.failed)
    return {
        "devices": len(job.devices),
        "provisioned": provisioned,
        "failed": failed,
        "remaining": len(job.devices) - provisioned - failed,
    }


def estimate_requests(
    job: JobState,
    *,
    chunk: int,
    group_chunk: int,
    page_size: int,
) -> dict[Step, int]:
    """How many requests the rest of the job will take if nothing fails (for ``--dry-run``).

    Assumes every device imports; devices given by serial need a product
    listing to learn their IDs, devices given by ID a group listing to learn
    their serials.
    """
    live: Sequence[DeviceState] = tuple(_live(job))
    n_import = sum(1 for d in live if d.imported in ACTIVE)
    n_locate = sum(1 for d in live if d.device_id is None)
    n_join = sum(1 for d in live if d.grouped in ACTIVE)
    n_serial = sum(1 for d in live if job.naming and d.named in ACTIVE and d.serial is None)
    n_name = sum(1 for d in live if d.named in ACTIVE)
    n_claim = sum(1 for d in live if d.claimed in ACTIVE)
    n_verify = sum(1 for d in live if d.verified in ACTIVE)
    pages = math.ceil(len(live) / page_size) if live else 0
    return {
        Step.GROUP: 2 if job.group is not None and job.group_status in ACTIVE else 0,
        Step.IMPORT: math.ceil(n_import / chunk),
        Step.LOCATE: pages if n_locate else 0,
        Step.JOIN: math.ceil(n_join / group_chunk),
        Step.SERIAL: pages if n_serial else 0,
        Step.NAME: n_name,
        Step.CLAIM: n_claim,
        Step.VERIFY: pages if n_verify else 0,
    }

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum

__all__ = [
    "ACTIVE",
    "FAILURE_REASONS",
    "STEP_RULES",
    "Change",
    "DeviceState",
    "JobState",
    "Listed",
    "Step",
    "StepRule",
    "StepWork",
    "apply_change",
    "apply_changes",
    "apply_values",
    "disagreements",
    "estimate_requests",
    "import_verdicts",
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


# -- the step rules: one table the planner and the estimate both read ---------------------------


@dataclass(frozen=True, slots=True)
class StepRule:
    """When a step applies to a device, and what it costs.

    ``needs`` picks the devices the step is for (given the job); ``cost`` is how
    many requests it takes for ``n`` such devices with the engine's chunk and
    page sizes and ``live`` devices in the job (listings page through them all).
    """

    step: Step
    needs: Callable[[JobState, DeviceState], bool]
    cost: Callable[[int, Mapping[str, int], int], int]


def _pages(n: int, sizes: Mapping[str, int], live: int) -> int:
    return math.ceil(live / sizes["page_size"]) if n and live else 0


STEP_RULES: tuple[StepRule, ...] = (
    StepRule(
        Step.IMPORT,
        lambda job, d: d.imported in ACTIVE,
        lambda n, sizes, live: math.ceil(n / sizes["chunk"]),
    ),
    StepRule(
        Step.LOCATE,
        lambda job, d: d.imported == "done" and d.device_id is None,
        _pages,
    ),
    StepRule(
        Step.JOIN,
        lambda job, d: d.imported == "done" and d.device_id is not None and d.grouped in ACTIVE,
        lambda n, sizes, live: math.ceil(n / sizes["group_chunk"]),
    ),
    StepRule(
        Step.SERIAL,
        lambda job, d: d.imported == "done" and job.naming and d.named in ACTIVE and not d.serial,
        _pages,
    ),
    StepRule(
        Step.NAME,
        lambda job, d: d.imported == "done" and d.named in ACTIVE and bool(d.serial),
        lambda n, sizes, live: n,
    ),
    StepRule(
        Step.CLAIM,
        lambda job, d: d.imported == "done" and d.device_id is not None and d.claimed in ACTIVE,
        lambda n, sizes, live: n,
    ),
    StepRule(
        Step.VERIFY,
        lambda job, d: d.imported == "done" and d.verified in ACTIVE,
        _pages,
    ),
)
"""Per-device steps in the order they run; a step runs only when no earlier one has work."""


def _group_pending(job: JobState) -> bool:
    return job.group is not None and job.group_status in ACTIVE


def next_step(job: JobState) -> StepWork | None:
    """The next step to run, or ``None`` when every device is finished or failed."""
    if _group_pending(job):
        return StepWork(Step.GROUP, ())
    live = tuple(_live(job))
    for rule in STEP_RULES:
        todo = tuple(d for d in live if rule.needs(job, d))
        if todo:
            return StepWork(rule.step, todo)
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

    Reads :data:`STEP_RULES` as if every step succeeded: a device that is to
    be imported will then need the steps after import too (its ID learnt by a
    listing if given by serial, its serial learnt by a listing if given by ID).
    """
    sizes = {"chunk": chunk, "group_chunk": group_chunk, "page_size": page_size}
    live: Sequence[DeviceState] = tuple(_live(job))
    assumed = tuple(_as_if_imported(d) for d in live)
    counts = {rule.step: sum(1 for d in assumed if rule.needs(job, d)) for rule in STEP_RULES}
    counts[Step.IMPORT] = sum(1 for d in live if d.imported in ACTIVE)
    # After the serial listing every device to name has its serial, and so on.
    counts[Step.NAME] += counts[Step.SERIAL]
    counts[Step.CLAIM] += sum(1 for d in assumed if d.claimed in ACTIVE and d.device_id is None)
    estimate = {Step.GROUP: 2 if _group_pending(job) else 0}
    for rule in STEP_RULES:
        estimate[rule.step] = rule.cost(counts[rule.step], sizes, len(live))
    return estimate


def _as_if_imported(device: DeviceState) -> DeviceState:
    if device.imported == "done":
        return device
    return DeviceState(
        device.key,
        device.identifier,
        device.id_kind,
        device.device_id,
        device.serial,
        "done",
        device.grouped,
        device.named,
        device.claimed,
        device.verified,
        device.failure,
    )


# -- typed changes to the journal ----------------------------------------------------------------


class _Unset:
    """Marks a :class:`Change` field that is not to be written."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass(frozen=True, slots=True)
class Change:
    """What a step learnt about one device: only the fields given are written."""

    key: int
    imported: str | _Unset = UNSET
    grouped: str | _Unset = UNSET
    named: str | _Unset = UNSET
    claimed: str | _Unset = UNSET
    verified: str | _Unset = UNSET
    device_id: str | _Unset | None = UNSET
    serial: str | _Unset | None = UNSET
    failure: str | _Unset | None = UNSET
    last_error: str | _Unset | None = field(default=UNSET)

    def values(self) -> dict[str, object]:
        """The fields to write, named as the store's columns (``serial`` → ``serial_number``)."""
        return {
            column: value
            for name, column in _CHANGE_COLUMNS
            if (value := getattr(self, name)) is not UNSET
        }

    @classmethod
    def fail(cls, key: int, reason: str, *, keep_claim: bool = False) -> Change:
        """A device the cloud refused for good: every later step is skipped."""
        return cls(
            key,
            grouped="skipped",
            named="skipped",
            claimed=UNSET if keep_claim else "skipped",
            verified="skipped",
            failure=reason,
            last_error=FAILURE_REASONS.get(reason, reason),
        )


_CHANGE_COLUMNS = tuple(
    (f.name, "serial_number" if f.name == "serial" else f.name)
    for f in fields(Change)
    if f.name != "key"
)
"""(attribute, store column) of each field a :class:`Change` may set (``values`` runs per row)."""


def apply_changes(job: JobState, changes: Iterable[Change]) -> JobState:
    """The job as it is after ``changes`` (what the journal holds once they are written)."""
    by_key = {c.key: c for c in changes}
    devices = tuple(
        d if (c := by_key.get(d.key)) is None else apply_change(d, c) for d in job.devices
    )
    return JobState(job.group, job.group_status, job.naming, job.claim_mode, devices)


def apply_change(d: DeviceState, change: Change) -> DeviceState:
    """One device as it is once ``change`` is written."""
    return apply_values(d, change.values())


def apply_values(d: DeviceState, v: Mapping[str, object]) -> DeviceState:
    """One device as it is once the columns ``v`` (as :meth:`Change.values` names them) are
    written."""
    return DeviceState(
        d.key,
        d.identifier,
        d.id_kind,
        v.get("device_id", d.device_id),  # type: ignore[arg-type]
        v.get("serial_number", d.serial),  # type: ignore[arg-type]
        v.get("imported", d.imported),  # type: ignore[arg-type]
        v.get("grouped", d.grouped),  # type: ignore[arg-type]
        v.get("named", d.named),  # type: ignore[arg-type]
        v.get("claimed", d.claimed),  # type: ignore[arg-type]
        v.get("verified", d.verified),  # type: ignore[arg-type]
        v.get("failure", d.failure),  # type: ignore[arg-type]
    )


# -- pure decisions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """What a listing says about one device: only the fields the engine uses."""

    id: str
    serial_number: str | None
    name: str | None
    groups: tuple[str, ...]
    owner: str | None
    platform_id: int | None


def import_verdicts(
    devices: Sequence[DeviceState],
    buckets: Mapping[str, Sequence[str]],
    *,
    claim_on_import: bool,
) -> tuple[list[Change], list[DeviceState]]:
    """Changes for an import answer's buckets, and the devices refused as plain "rejected".

    ``buckets`` maps ``updated``, ``existing``, ``nonmember``, ``protected`` and
    ``invalid`` to the identifiers the cloud put there. A device the answer
    does not mention stays ``error`` (tried again on the next run).
    """
    verdict_of = {
        "updated": None,
        "existing": None,
        "nonmember": "another-product",
        "protected": "device-protected",
        "invalid": "rejected",
    }
    by_identifier = {d.identifier.lower(): d for d in devices}
    verdicts: dict[int, str | None] = {}
    for bucket, verdict in verdict_of.items():
        for identifier in buckets.get(bucket, ()):
            device = by_identifier.get(identifier.lower())
            if device is not None and device.key not in verdicts:
                verdicts[device.key] = verdict
    changes: list[Change] = []
    rejected: list[DeviceState] = []
    for device in devices:
        if device.key not in verdicts:
            changes.append(
                Change(
                    device.key,
                    imported="error",
                    last_error="the cloud's import answer did not mention this identifier",
                )
            )
            continue
        failure = verdicts[device.key]
        if failure is None:
            claimed: str | _Unset = "done" if claim_on_import else UNSET
            changes.append(Change(device.key, imported="done", claimed=claimed, last_error=None))
            continue
        fail = Change.fail(device.key, failure)
        changes.append(
            Change(
                device.key,
                imported="failed",
                grouped="skipped",
                named="skipped",
                claimed="skipped",
                verified="skipped",
                failure=failure,
                last_error=fail.last_error,
            )
        )
        if failure == "rejected":
            rejected.append(device)
    return changes, rejected


def disagreements(
    device: DeviceState, seen: Listed | None, group: str | None, claim_mode: str
) -> dict[str, str]:
    """What the listing shows differently from the journal: problem → step column to redo."""
    if seen is None:
        if group:
            return {"not listed in the group": "grouped"}
        return {"not in the product": "imported"}
    fixes: dict[str, str] = {}
    if group and group not in seen.groups:
        fixes["not in the group"] = "grouped"
    if device.named == "done" and device.serial and seen.name != device.serial:
        fixes["name differs"] = "named"
    if device.claimed == "done" and claim_mode == "each" and not seen.owner:
        fixes["not claimed"] = "claimed"
    return fixes

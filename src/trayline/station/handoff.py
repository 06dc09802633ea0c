"""The hand-off: units that left the station ready become a provisioning job, and back.

The line's provisioning policy (``[provisioning]`` in ``trayline.toml``: group
pattern, naming, claim) and the ready units' device IDs make the job input
(:func:`line_job`); the job then runs through the ordinary engine and journal
(``trayline provision run --from-line``), with the same resume and crash
guarantees as any other job. Afterwards :func:`write_back` copies each
device's outcome from the job report onto its unit record (``cloud``:
product, group, name, state, job, reason), so ``trayline units show`` answers
"is this unit in the customer's product?".

The group's ``{count}`` is the number of line hand-offs before this one plus
one; a hand-off interrupted before its write-back computes the same count
again, so the same units resume the same job instead of starting another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from trayline.provisioning.journal import JobSpec
from trayline.reports.provisioning import job_report
from trayline.settings.line import LineConfig, format_group
from trayline.store.db import Store
from trayline.store.units import EventContext, UnitView, list_units, set_cloud

__all__ = ["LineInput", "handoff_count", "line_job", "pending_units", "write_back"]

PROVISIONED = "provisioned"


@dataclass(frozen=True, slots=True)
class LineInput:
    """One ready unit as a journal input row (the :class:`JournalInput` shape)."""

    line: int
    identifier: str
    kind: str
    device_id: str | None
    serial: str | None
    iccid: str | None


def pending_units(store: Store) -> list[UnitView]:
    """Ready units with a device ID that no hand-off has provisioned yet."""
    return [
        u
        for u in list_units(store, status="ready")
        if u.device_id and (u.cloud or {}).get("state") != PROVISIONED
    ]


def handoff_count(store: Store) -> int:
    """How many hand-off jobs have written back so far (their job IDs on unit records)."""
    jobs = {(u.cloud or {}).get("job_id") for u in list_units(store, status="ready") if u.cloud}
    return len(jobs - {None})


def line_job(
    store: Store, config: LineConfig, *, when: datetime | None = None
) -> tuple[JobSpec, list[LineInput]]:
    """The job spec and inputs for the units waiting to be provisioned (may be empty)."""
    units = pending_units(store)
    policy = config.provisioning
    group = format_group(
        policy.group, when=when or datetime.now(UTC), count=handoff_count(store) + 1
    )
    spec = JobSpec(
        product=str(config.product),
        group=str(group),
        group_auto=False,
        naming=policy.naming,
        claim_mode=policy.claim,
        claim_user=policy.claim_user,
        input_path=f"line:{config.station}",
    )
    inputs = [
        LineInput(n, u.device_id or "", "device_id", u.device_id, u.serial_number, u.iccid)
        for n, u in enumerate(units, start=1)
    ]
    return spec, inputs


def write_back(store: Store, config: LineConfig, job_id: int, group: str | None) -> dict[str, int]:
    """Copy each device's provisioning outcome onto its unit; counts by state."""
    ctx = EventContext(config.station, None, None)
    by_device = {u.device_id: u for u in list_units(store, status="ready") if u.device_id}
    counts: dict[str, int] = {}
    for row in job_report(store, job_id):
        unit = by_device.get(row.device_id or row.identifier)
        if unit is None:
            continue
        cloud = {
            "product": str(config.product),
            "group": group,
            "name": unit.serial_number if config.provisioning.naming else None,
            "state": row.state,
            "reason": row.reason,
            "job_id": job_id,
        }
        set_cloud(store, unit.id, cloud, ctx=ctx)
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts

"""The provisioning journal in the store: create or resume a job, read its state, record steps.

Everything the engine learns goes through here, and every write is its own
committed transaction, so the journal on disk is always a state the planner
(:mod:`trayline.provisioning.plan`) can resume from. Updates are done in bulk
(one statement for many devices): a 10,000-device job must not spend its time
in fsyncs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import insert, select, update

from trayline.provisioning.plan import DeviceState, JobState
from trayline.store.db import Store
from trayline.store.models import Event, ProvisioningDevice, ProvisioningJob

__all__ = ["JobSpec", "Journal", "JournalInput", "job_key"]

STEP_COLUMNS = frozenset({"imported", "grouped", "named", "claimed", "verified"})


class JournalInput(Protocol):
    """One accepted input row (see :mod:`trayline.inputs`)."""

    @property
    def line(self) -> int: ...
    @property
    def identifier(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def serial(self) -> str | None: ...
    @property
    def iccid(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the user asked for; the same spec and input resume the same job."""

    product: str
    group: str | None
    group_auto: bool
    naming: bool
    claim_mode: str
    claim_user: str | None
    input_path: str


def job_key(spec: JobSpec, identifiers: Iterable[str]) -> str:
    """A digest of product, group choice and the set of identifiers: the job's identity."""
    digest = hashlib.sha256()
    group = "auto" if spec.group_auto else (spec.group or "")
    digest.update(f"{spec.product}\0{group}\0".encode())
    for identifier in sorted(identifiers):
        digest.update(identifier.encode() + b"\n")
    return digest.hexdigest()


class Journal:
    """One job's rows in the store."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.store = store
        self.job_id = job_id

    # -- creating and finding jobs -------------------------------------------------------

    @classmethod
    def find(cls, store: Store, key: str) -> Journal | None:
        with store.session() as session:
            job_id = session.scalar(select(ProvisioningJob.id).where(ProvisioningJob.key == key))
        return cls(store, job_id) if job_id is not None else None

    @classmethod
    def create(
        cls,
        store: Store,
        key: str,
        spec: JobSpec,
        group: str | None,
        inputs: Sequence[JournalInput],
        options: Mapping[str, Any],
    ) -> Journal:
        """Write the job and all its device rows in one transaction."""
        naming = "pending" if spec.naming else "skipped"
        grouped = "pending" if group else "skipped"
        claimed = "pending" if spec.claim_mode != "none" else "skipped"
        with store.session() as session:
            job = ProvisioningJob(
                key=key,
                product=spec.product,
                group_name=group,
                name_mode="serial" if spec.naming else "none",
                claim_mode=spec.claim_mode,
                claim_user=spec.claim_user,
                input_path=spec.input_path,
                group_status="pending" if group else "skipped",
                options=dict(options),
            )
            session.add(job)
            session.flush()
            job_id = job.id
            rows = [
                {
                    "job_id": job_id,
                    "line_no": item.line,
                    "identifier": item.identifier,
                    "id_kind": item.kind,
                    "device_id": item.device_id,
                    "serial_number": item.serial,
                    "iccid": item.iccid,
                    "imported": "pending",
                    "grouped": grouped,
                    "named": naming,
                    "claimed": claimed,
                    "verified": "pending",
                    "attempts": 0,
                }
                for item in inputs
            ]
            if rows:
                session.execute(insert(ProvisioningDevice), rows)
            session.add(
                Event(
                    kind="provision.job.created",
                    message=f"job {job_id}: {len(rows)} devices",
                    data={"job_id": job_id, "product": spec.product, "group": group},
                )
            )
        return cls(store, job_id)

    # -- reading ---------------------------------------------------------------------------

    def job(self) -> ProvisioningJob:
        with self.store.session() as session:
            job = session.get(ProvisioningJob, self.job_id)
            assert job is not None
            session.expunge(job)
            return job

    def state(self) -> JobState:
        with self.store.session() as session:
            job = session.get(ProvisioningJob, self.job_id)
            assert job is not None
            rows = session.execute(
                select(
                    ProvisioningDevice.id,
                    ProvisioningDevice.identifier,
                    ProvisioningDevice.id_kind,
                    ProvisioningDevice.device_id,
                    ProvisioningDevice.serial_number,
                    ProvisioningDevice.imported,
                    ProvisioningDevice.grouped,
                    ProvisioningDevice.named,
                    ProvisioningDevice.claimed,
                    ProvisioningDevice.verified,
                    ProvisioningDevice.failure,
                )
                .where(ProvisioningDevice.job_id == self.job_id)
                .order_by(ProvisioningDevice.id)
            ).all()
            return JobState(
                group=job.group_name,
                group_status=job.group_status,
                naming=job.name_mode == "serial",
                claim_mode=job.claim_mode,
                devices=tuple(DeviceState(*row) for row in rows),
            )

    # -- writing ---------------------------------------------------------------------------

    def set_job(self, **fields: Any) -> None:
        with self.store.session() as session:
            session.execute(
                update(ProvisioningJob).where(ProvisioningJob.id == self.job_id).values(**fields)
            )

    def mark(self, keys: Iterable[int], column: str, status: str, **fields: Any) -> None:
        """Set one step's status (and the same extra fields) on many devices at once.

        Marking ``sent`` is the intent to send a request, so it also counts an attempt.
        """
        assert column in STEP_COLUMNS
        values: dict[str, Any] = {column: status, **fields, "updated_at": datetime.now(UTC)}
        if status == "sent":
            values["attempts"] = ProvisioningDevice.attempts + 1
        ids = list(keys)
        if not ids:
            return
        with self.store.session() as session:
            for start in range(0, len(ids), 500):
                session.execute(
                    update(ProvisioningDevice)
                    .where(ProvisioningDevice.id.in_(ids[start : start + 500]))
                    .values(**values)
                )

    def update_each(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Per-device updates (each mapping has ``id`` and the columns to set), one transaction."""
        if not rows:
            return
        now = datetime.now(UTC)
        with self.store.session() as session:
            session.execute(
                update(ProvisioningDevice), [{**row, "updated_at": now} for row in rows]
            )

    def event(self, kind: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        with self.store.session() as session:
            session.add(
                Event(kind=kind, message=message, data=dict(data or {}), source="provision")
            )

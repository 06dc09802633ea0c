"""The provisioning journal: a job's identity and state, written as the engine learns things.

Everything the engine learns goes through here. Reads come back as the
planner's plain data (:class:`~trayline.provisioning.plan.JobState`); writes
go as typed :class:`~trayline.provisioning.plan.Change` s to the store's
group-committing writer (:class:`~trayline.store.writer.StoreWriter`), so
the event loop never waits on a disk and a killed process loses at most the
last few tens of milliseconds of answers. The SQL lives in
:mod:`trayline.store.jobs`.

A job's identity (:func:`job_key`) is the cloud's API URL, the account the
token belongs to, the product, the group choice and the set of identifiers:
the same tray against the local cloud and then the real one is two jobs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from trayline.provisioning.plan import Change, DeviceState, JobState, apply_values
from trayline.store import jobs
from trayline.store.db import Store
from trayline.store.jobs import JobRow
from trayline.store.writer import StoreWriter

__all__ = ["CloudIdentity", "JobSpec", "Journal", "JournalInput", "job_key"]


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
class CloudIdentity:
    """Which cloud and which account: the API URL and the token's username (never the token)."""

    api_url: str
    account: str


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


def job_key(spec: JobSpec, identity: CloudIdentity, identifiers: Iterable[str]) -> str:
    """A digest of cloud, account, product, group choice and the identifiers: the job's identity."""
    digest = hashlib.sha256()
    group = "auto" if spec.group_auto else (spec.group or "")
    for part in (identity.api_url.rstrip("/").lower(), identity.account, spec.product, group):
        digest.update(part.encode() + b"\0")
    for identifier in sorted(identifiers):
        digest.update(identifier.encode() + b"\n")
    return digest.hexdigest()


class Journal:
    """One job's rows in the store; writes go through a writer once :meth:`attach` is called."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.store = store
        self.job_id = job_id
        self.writer: StoreWriter | None = None
        self._mirror: JobState | None = None
        self._devices: dict[int, DeviceState] = {}
        self._sent_back = False
        self._barrier: asyncio.Future[None] | None = None

    # -- creating and finding jobs -------------------------------------------------------

    @classmethod
    def find(cls, store: Store, key: str) -> Journal | None:
        job_id = jobs.find_job(store, key)
        return cls(store, job_id) if job_id is not None else None

    @classmethod
    def create(
        cls,
        store: Store,
        key: str,
        spec: JobSpec,
        identity: CloudIdentity,
        group: str | None,
        inputs: Sequence[JournalInput],
        options: Mapping[str, Any],
    ) -> tuple[Journal, bool]:
        """Write the job and its device rows in one transaction. Returns (journal, created)."""
        naming = "pending" if spec.naming else "skipped"
        grouped = "pending" if group else "skipped"
        claimed = "pending" if spec.claim_mode != "none" else "skipped"
        job = {
            "key": key,
            "api_url": identity.api_url,
            "account": identity.account,
            "product": spec.product,
            "group_name": group,
            "name_mode": "serial" if spec.naming else "none",
            "claim_mode": spec.claim_mode,
            "claim_user": spec.claim_user,
            "input_path": spec.input_path,
            "group_status": "pending" if group else "skipped",
            "status": "new",
            "options": dict(options),
        }
        rows = [
            {
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
        event = {
            "kind": "provision.job.created",
            "message": f"{len(rows)} devices",
            "data": {"product": spec.product, "group": group, "api_url": identity.api_url},
        }
        job_id, created = jobs.create_job(store, job, rows, event)
        return cls(store, job_id), created

    # -- reading ---------------------------------------------------------------------------

    def job(self) -> JobRow:
        return jobs.job_row(self.store, self.job_id)

    def state(self) -> JobState:
        job = jobs.job_row(self.store, self.job_id)
        rows = jobs.device_rows(self.store, self.job_id)
        return JobState(
            group=job.group_name,
            group_status=job.group_status,
            naming=job.name_mode == "serial",
            claim_mode=job.claim_mode,
            devices=tuple(DeviceState(*row) for row in rows),
        )

    async def current(self) -> JobState:
        """The job as this run's own writes leave it, without reading 10,000 rows per step.

        The first call reads the store; from then on every intent, result and
        group status this journal writes is applied here too, so the planner
        sees what the store will hold once the writer has committed. Only the
        process holding the job's lease writes its rows, so nothing else can
        change them under us; :meth:`state` still reads the store itself.
        """
        if self._mirror is None:
            state = await asyncio.to_thread(self.state)
            self._devices = {d.key: d for d in state.devices}
            self._mirror = state
        return replace(self._mirror, devices=tuple(self._devices.values()))

    def _mirror_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Apply written rows (``id`` and the columns set) to the mirror."""
        if self._mirror is None:
            return
        devices = self._devices
        for row in rows:
            device = devices.get(row["id"])
            if device is not None:
                devices[row["id"]] = apply_values(device, row)

    # -- writing ---------------------------------------------------------------------------

    def attach(self, writer: StoreWriter) -> None:
        """Send writes through ``writer`` (group commits) from now on."""
        self.writer = writer

    def _put(self, op: jobs.Op) -> None:
        if self.writer is None:
            with self.store.session() as session:
                op(session)
        else:
            self.writer.put(op)

    def set_job(self, **fields: Any) -> None:
        """Job-level fields, committed at once (status changes must not wait for a batch)."""
        if self.writer is None:
            jobs.set_job(self.store, self.job_id, **fields)
        else:
            self.writer.put(jobs.set_job_op(self.job_id, **fields))
        if self._mirror is not None and "group_status" in fields:
            self._mirror = replace(self._mirror, group_status=fields["group_status"])

    async def intend(self, keys: Sequence[int], column: str) -> None:
        """The intent: a request for ``keys``' ``column`` step is about to go out. Durable
        before the caller goes on; counts an attempt per device.

        The writer runs a commit's intents before its results. So once a result has set a
        step back to "pending" (verify sending a device back), every intent waits for that
        result to be committed first; otherwise one commit could apply "sent", then
        "pending" over it.
        """
        if self._sent_back:
            self._sent_back = False
            self._barrier = asyncio.ensure_future(self.flush())
        if self._barrier is not None:
            await asyncio.shield(self._barrier)  # a cancelled waiter must not cancel the rest's
        op = jobs.mark_op(keys, column, "sent")
        committed = None if self.writer is None else self.writer.queue_waited(op)
        if committed is None:
            self._put(op)
        # Mirrored as soon as it is queued, not once committed: a worker cancelled while
        # it waits (another device's answer stopped the job) has still written "sent".
        self._mirror_rows({"id": key, column: "sent"} for key in keys)
        if committed is not None:
            await committed

    def record(self, changes: Sequence[Change]) -> None:
        """Results, written with the next group commit."""
        rows = [{"id": c.key, **values} for c in changes if (values := c.values())]
        if rows:
            self._put(jobs.update_devices_op(rows))
            self._mirror_rows(rows)
            if not self._sent_back and any("pending" in row.values() for row in rows):
                self._sent_back = True

    def event(self, kind: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        self._put(jobs.event_op(kind, message, data or {}))

    async def flush(self) -> None:
        if self.writer is not None:
            await self.writer.flush()

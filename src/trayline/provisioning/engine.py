"""The provisioning engine: the loop that runs a job's steps against the Particle Cloud.

The loop is simple on purpose::

    while (work := next_step(journal.state())) is not None:
        run that step for those devices      # steps.py: intent, requests, results

:func:`~trayline.provisioning.plan.next_step` decides, from the journal alone,
what comes next; :mod:`trayline.provisioning.steps` holds one handler per step.
Bulk endpoints are used wherever the API has them (multipart import of 500
identifiers, batch group PUT, paged listings), so a job costs about one request
per device — the rename — plus a few percent.

The journal's writes go through a :class:`~trayline.store.writer.StoreWriter`
thread (group commits every 20 ms), its reads through a worker thread: the
event loop that keeps the requests flowing never waits on a disk.

Failure policy:

* a device the cloud refuses (unknown, another product, platform, protected)
  fails for good, with the reason in plain words in the report;
* a transient failure that outlasts the client's retries marks the device
  ``error``: it sits out the rest of this run and is retried on the next;
* a 401, an unknown product or a token that may not claim stops the job
  (:class:`JobStopped`, exit code 3); the journal keeps everything done so far;
* a cancellation (Ctrl-C, SIGTERM) marks the job ``interrupted`` after the
  answers already received are committed, and propagates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trayline.particle.client import CallRecord, ParticleClient
from trayline.particle.errors import AuthError, CloudError, NotFound
from trayline.provisioning.journal import CloudIdentity, JobSpec, Journal, JournalInput, job_key
from trayline.provisioning.plan import (
    DeviceState,
    JobState,
    Step,
    StepWork,
    estimate_requests,
    next_step,
    summarise,
)
from trayline.provisioning.steps import JobStopped, ProgressSink, StepContext, run_step
from trayline.store import jobs
from trayline.store.db import Store
from trayline.store.writer import StoreWriter

__all__ = [
    "EngineOptions",
    "JobStopped",
    "NoProgress",
    "Outcome",
    "ProgressSink",
    "dry_run",
    "open_job",
    "run_job",
]


class NoProgress:
    def step_started(self, step: Step, total: int) -> None:
        pass

    def advance(self, step: Step, count: int = 1) -> None:
        pass

    def step_finished(self, step: Step) -> None:
        pass

    def notice(self, message: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class EngineOptions:
    chunk: int = 500
    group_chunk: int = 500
    concurrency: int = 32
    page_size: int = 1000
    """Devices per listing page. The API's maximum is UNCONFIRMED (spec §8.2): paging follows
    the ``total_pages`` the first answer gives, so a cloud that caps the size silently is read
    whole, and one that refuses the size with a 400 is asked again at 100 per page."""
    verify_rounds: int = 3
    diagnose: int = 10
    group_description: str = "added by trayline"
    group_color: str = "#cae6f6"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Outcome:
    job_id: int
    resumed: bool
    counts: dict[str, int]
    stopped: str | None = None
    elapsed_s: float = 0.0
    requests: int = 0
    by_step: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.stopped:
            return 3
        return 0 if self.counts["provisioned"] == self.counts["devices"] else 1


def auto_group_name(count: int, today: datetime | None = None) -> str:
    """The guide's ``YYYYMMDD_NNNN``: the date and the number of devices in the shipment."""
    day = today or datetime.now(UTC)
    return f"{day:%Y%m%d}_{count:04d}"


def open_job(
    store: Store,
    spec: JobSpec,
    identity: CloudIdentity,
    inputs: Sequence[JournalInput],
    options: EngineOptions,
) -> tuple[Journal, bool]:
    """Find the job this command started before (same cloud and account), or create it.

    Returns (journal, resumed). Two processes creating the same job at once get
    the same job: the store's unique key decides, the loser re-reads.
    """
    key = job_key(spec, identity, (item.identifier for item in inputs))
    found = Journal.find(store, key)
    if found is not None:
        return found, True
    group = auto_group_name(len(inputs)) if spec.group_auto else spec.group
    journal, created = Journal.create(store, key, spec, identity, group, inputs, options.to_dict())
    return journal, not created


def dry_run(
    spec: JobSpec,
    api_url: str | None,
    inputs: Sequence[JournalInput],
    options: EngineOptions,
    store: Store | None,
) -> tuple[JobState, dict[Step, int], bool]:
    """The plan and its request count, from the journal if the job exists, else as new.

    A dry run sends nothing, not even the account lookup: it tries each account
    the store has seen on ``api_url`` (one per token, usually one in all).
    """
    if store is not None and api_url is not None:
        for account in jobs.accounts_for(store, api_url):
            identity = CloudIdentity(api_url, account)
            found = Journal.find(store, job_key(spec, identity, (i.identifier for i in inputs)))
            if found is not None:
                state = found.state()
                return state, _estimate(state, options), True
    group = auto_group_name(len(inputs)) if spec.group_auto else spec.group
    state = JobState(
        group=group,
        group_status="pending" if group else "skipped",
        naming=spec.naming,
        claim_mode=spec.claim_mode,
        devices=tuple(
            DeviceState(
                key=n,
                identifier=i.identifier,
                id_kind=i.kind,
                device_id=i.device_id,
                serial=i.serial,
                imported="pending",
                grouped="pending" if group else "skipped",
                named="pending" if spec.naming else "skipped",
                claimed="skipped" if spec.claim_mode == "none" else "pending",
                verified="pending",
            )
            for n, i in enumerate(inputs)
        ),
    )
    return state, _estimate(state, options), False


def _estimate(state: JobState, options: EngineOptions) -> dict[Step, int]:
    return estimate_requests(
        state, chunk=options.chunk, group_chunk=options.group_chunk, page_size=options.page_size
    )


class JournalAudit:
    """The audit log, written by the journal's writer in the same commits as the results."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def record_call(self, call: CallRecord) -> None:
        row = {
            "method": call.method,
            "path_template": call.path_template,
            "status": call.status,
            "duration_ms": round(call.duration_ms, 3),
            "attempt": call.attempt,
            "error_kind": call.error_kind,
            "job_id": self.journal.job_id,
        }
        if self.journal.writer is not None:
            self.journal.writer.put(jobs.call_rows_op([row]))


async def run_job(
    client: ParticleClient,
    journal: Journal,
    options: EngineOptions,
    progress: ProgressSink | None = None,
    *,
    lease_lost: Callable[[], bool] | None = None,
    budget_wait: Callable[[datetime], Awaitable[None]] | None = None,
) -> Outcome:
    """Run the job until nothing is left to do this run; the journal holds the result.

    The journal's writes go through a writer thread for the run; every call the
    client makes is logged by the same writer, so the audit log holds every
    answer the journal does.
    """
    writer = StoreWriter(journal.store)
    journal.attach(writer)
    audit = JournalAudit(journal)
    client.add_observer(audit)
    try:
        engine = _Engine(client, journal, options, progress or NoProgress(), lease_lost)
        engine.ctx.budget_wait = budget_wait
        engine.ctx.lease_lost = engine.lease_lost
        return await engine.run()
    finally:
        client.remove_observer(audit)
        journal.writer = None
        await asyncio.shield(asyncio.to_thread(writer.close))


class _Engine:
    def __init__(
        self,
        client: ParticleClient,
        journal: Journal,
        options: EngineOptions,
        progress: ProgressSink,
        lease_lost: Callable[[], bool] | None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.lease_lost = lease_lost or (lambda: False)
        job = journal.job()
        self.ctx = StepContext(
            client=client,
            journal=journal,
            progress=progress,
            product=job.product,
            group=job.group_name,
            claim_mode=job.claim_mode,
            claim_user=job.claim_user,
            concurrency=options.concurrency,
            chunk=options.chunk,
            group_chunk=options.group_chunk,
            page_size=options.page_size,
            verify_rounds=options.verify_rounds,
            diagnose=options.diagnose,
            group_description=options.group_description,
            group_color=options.group_color,
        )
        self.by_step: dict[str, int] = {}

    async def run(self) -> Outcome:
        started = time.monotonic()
        sent_before = self.client.requests_sent
        stopped: str | None = None
        self.journal.set_job(status="running", last_error=None)
        try:
            while (work := await self._next()) is not None:
                if self.lease_lost():
                    raise JobStopped("another process took over this job's lease; stopped")
                before = self.client.requests_sent
                await run_step(self.ctx, work.step, work.devices)
                key = str(work.step)
                self.by_step[key] = self.by_step.get(key, 0) + self.client.requests_sent - before
        except JobStopped as exc:
            stopped = str(exc)
        except (AuthError, NotFound) as exc:
            stopped = _stop_message(exc, self.ctx.product)
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupted())
            raise
        await self.journal.flush()
        state = await self.journal.current()
        counts = summarise(state)
        finished = next_step(state) is None
        status = "stopped" if stopped else ("done" if finished else "incomplete")
        self.journal.set_job(
            status=status,
            last_error=stopped,
            finished_at=datetime.now(UTC) if finished else None,
        )
        self.journal.event(
            "provision.job.run",
            f"job {self.journal.job_id} {status}: {counts}",
            {"job_id": self.journal.job_id, "status": status, **counts},
        )
        await self.journal.flush()
        return Outcome(
            job_id=self.journal.job_id,
            resumed=False,
            counts=counts,
            stopped=stopped,
            elapsed_s=time.monotonic() - started,
            requests=self.client.requests_sent - sent_before,
            by_step=self.by_step,
        )

    async def _interrupted(self) -> None:
        self.journal.set_job(status="interrupted", last_error="interrupted")
        self.journal.event(
            "provision.job.interrupted",
            f"job {self.journal.job_id} interrupted",
            {"job_id": self.journal.job_id},
        )
        await self.journal.flush()

    async def _next(self) -> StepWork | None:
        """The planner's next step, minus devices that hit a transient error this run.

        It plans from the journal's mirror of its own writes, so it neither waits for the
        writer to commit the last step's answers nor reads the job's rows back."""
        state = await self.journal.current()
        if self.ctx.sitting_out:
            kept = tuple(d for d in state.devices if d.key not in self.ctx.sitting_out)
            state = replace(state, devices=kept)
        if self.ctx.group_failed and state.group_status == "error":
            return None
        return next_step(state)


def _stop_message(exc: CloudError, product: str) -> str:
    if isinstance(exc, AuthError):
        return f"the access token was refused ({exc.message}); get a new token and run again"
    return f"product {product!r} not found or not accessible with this token ({exc.message})"

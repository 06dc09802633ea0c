"""The provisioning engine: runs a job's steps against the Particle Cloud, journaling each one.

The loop is simple on purpose::

    while (work := next_step(journal.state())) is not None:
        run that step for those devices      # intent written, requests sent, results written

:func:`~trayline.provisioning.plan.next_step` decides, from the journal alone,
what comes next; each ``_step_*`` method marks its devices ``sent`` (the intent),
sends the requests concurrently through the client's shared rate limiter, and
writes what came back. Bulk endpoints are used wherever the API has them
(multipart import of 500 identifiers, batch group PUT, paged listings), so a job
costs about one request per device — the rename — plus a few percent.

Failure policy:

* a device the cloud refuses (unknown, another product, platform, protected)
  fails for good, with the reason in plain words in the report;
* a transient failure that outlasts the client's retries marks the device
  ``error``: it sits out the rest of this run and is retried on the next;
* a 401, an unknown product or a token that may not claim stops the job
  (:class:`JobStopped`, exit code 3); the journal keeps everything done so far.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from trayline.particle.client import ParticleClient, SerialBudgetExhausted
from trayline.particle.errors import (
    AuthError,
    BadRequest,
    CloudError,
    NotFound,
    PermissionDenied,
)
from trayline.particle.resources import Device
from trayline.provisioning.journal import JobSpec, Journal, JournalInput, job_key
from trayline.provisioning.plan import (
    FAILURE_REASONS,
    DeviceState,
    JobState,
    Step,
    StepWork,
    estimate_requests,
    next_step,
    summarise,
)
from trayline.store.db import Store

__all__ = [
    "EngineOptions",
    "JobStopped",
    "Outcome",
    "ProgressSink",
    "dry_run",
    "open_job",
    "run_job",
]

T = TypeVar("T")


class JobStopped(Exception):
    """The job cannot go on (bad token, unknown product, a permission it lacks)."""


class ProgressSink(Protocol):
    """Where the engine reports progress; the CLI draws bars, tests count."""

    def step_started(self, step: Step, total: int) -> None: ...
    def advance(self, step: Step, count: int = 1) -> None: ...
    def step_finished(self, step: Step) -> None: ...


class NoProgress:
    def step_started(self, step: Step, total: int) -> None:
        pass

    def advance(self, step: Step, count: int = 1) -> None:
        pass

    def step_finished(self, step: Step) -> None:
        pass


@dataclass(frozen=True, slots=True)
class EngineOptions:
    chunk: int = 500
    group_chunk: int = 500
    concurrency: int = 32
    page_size: int = 100
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
    store: Store, spec: JobSpec, inputs: Sequence[JournalInput], options: EngineOptions
) -> tuple[Journal, bool]:
    """Find the job this command started before, or create it. Returns (journal, resumed)."""
    key = job_key(spec, (item.identifier for item in inputs))
    found = Journal.find(store, key)
    if found is not None:
        return found, True
    group = auto_group_name(len(inputs)) if spec.group_auto else spec.group
    return Journal.create(store, key, spec, group, inputs, options.to_dict()), False


def dry_run(
    spec: JobSpec, inputs: Sequence[JournalInput], options: EngineOptions, store: Store | None
) -> tuple[JobState, dict[Step, int], bool]:
    """The plan and its request count, from the journal if the job exists, else as new."""
    if store is not None:
        found = Journal.find(store, job_key(spec, (i.identifier for i in inputs)))
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


async def run_job(
    client: ParticleClient,
    journal: Journal,
    options: EngineOptions,
    progress: ProgressSink | None = None,
    *,
    on_step_done: Callable[[], None] | None = None,
) -> Outcome:
    """Run the job until nothing is left to do this run; the journal holds the result."""
    engine = _Engine(client, journal, options, progress or NoProgress(), on_step_done)
    return await engine.run()


class _Engine:
    def __init__(
        self,
        client: ParticleClient,
        journal: Journal,
        options: EngineOptions,
        progress: ProgressSink,
        on_step_done: Callable[[], None] | None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.options = options
        self.progress = progress
        self.on_step_done = on_step_done
        job = journal.job()
        self.product = job.product
        self.group = job.group_name
        self.claim_mode = job.claim_mode
        self.claim_user = job.claim_user
        self.sitting_out: set[int] = set()
        self.verify_rounds = 0
        self.group_failed = False
        self.by_step: dict[str, int] = {}

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        started = time.monotonic()
        sent_before = self.client.requests_sent
        stopped: str | None = None
        self.journal.set_job(status="running", last_error=None)
        try:
            while (work := self._next()) is not None:
                before = self.client.requests_sent
                await self._run_step(work.step, work.devices)
                key = str(work.step)
                self.by_step[key] = self.by_step.get(key, 0) + self.client.requests_sent - before
                if self.on_step_done is not None:
                    self.on_step_done()
        except JobStopped as exc:
            stopped = str(exc)
        except (AuthError, NotFound) as exc:
            stopped = _stop_message(exc, self.product)
        state = self.journal.state()
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
        return Outcome(
            job_id=self.journal.job_id,
            resumed=False,
            counts=counts,
            stopped=stopped,
            elapsed_s=time.monotonic() - started,
            requests=self.client.requests_sent - sent_before,
            by_step=self.by_step,
        )

    def _next(self) -> StepWork | None:
        """The planner's next step, minus devices that hit a transient error this run."""
        state = self.journal.state()
        if self.sitting_out:
            kept = tuple(d for d in state.devices if d.key not in self.sitting_out)
            state = replace(state, devices=kept)
        if self.group_failed and state.group_status == "error":
            return None
        return next_step(state)

    async def _run_step(self, step: Step, devices: tuple[DeviceState, ...]) -> None:
        handlers: dict[Step, Callable[[tuple[DeviceState, ...]], Awaitable[None]]] = {
            Step.GROUP: self._step_group,
            Step.IMPORT: self._step_import,
            Step.LOCATE: self._step_locate,
            Step.JOIN: self._step_join,
            Step.SERIAL: self._step_serial,
            Step.NAME: self._step_name,
            Step.CLAIM: self._step_claim,
            Step.VERIFY: self._step_verify,
        }
        self.progress.step_started(step, max(len(devices), 1))
        try:
            await handlers[step](devices)
        finally:
            self.progress.step_finished(step)

    async def _bounded(self, jobs: Iterable[Awaitable[T]]) -> list[T]:
        """Run awaitables with at most ``concurrency`` in flight, results in order."""
        gate = asyncio.Semaphore(self.options.concurrency)

        async def one(job: Awaitable[T]) -> T:
            async with gate:
                return await job

        tasks = [asyncio.ensure_future(one(j)) for j in jobs]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _sit_out(self, keys: Iterable[int]) -> None:
        self.sitting_out.update(keys)

    # -- group -----------------------------------------------------------------------------------

    async def _step_group(self, _devices: tuple[DeviceState, ...]) -> None:
        assert self.group is not None
        self.journal.set_job(group_status="sent")
        try:
            existing = await self.client.list_groups(self.product, name=self.group)
            if not any(g.name == self.group for g in existing):
                try:
                    await self.client.create_group(
                        self.product,
                        self.group,
                        description=self.options.group_description,
                        color=self.options.group_color,
                    )
                except BadRequest as exc:
                    if not exc.duplicate:
                        raise JobStopped(f"cannot create group {self.group!r}: {exc}") from None
        except PermissionDenied as exc:
            raise JobStopped(f"the token may not manage groups of {self.product}: {exc}") from None
        except (AuthError, NotFound):
            raise
        except CloudError as exc:
            self.journal.set_job(group_status="error", last_error=str(exc))
            self.group_failed = True
            raise JobStopped(f"could not make sure group {self.group!r} exists: {exc}") from None
        self.journal.set_job(group_status="done")
        self.progress.advance(Step.GROUP)

    # -- import ----------------------------------------------------------------------------------

    async def _step_import(self, devices: tuple[DeviceState, ...]) -> None:
        size = self.options.chunk
        chunks = [devices[i : i + size] for i in range(0, len(devices), size)]
        rejected: list[DeviceState] = []
        for found in await self._bounded(self._import_chunk(c) for c in chunks):
            rejected.extend(found)
        if rejected:
            await self._diagnose(rejected)

    async def _import_chunk(self, chunk: tuple[DeviceState, ...]) -> list[DeviceState]:
        keys = [d.key for d in chunk]
        self.journal.mark(keys, "imported", "sent")
        claim_user = self.claim_user if self.claim_mode == "import" else None
        try:
            result = await self.client.import_devices(
                self.product, [d.identifier for d in chunk], claim_user=claim_user
            )
        except PermissionDenied as exc:
            raise JobStopped(
                f"the token may not import into product {self.product}: {exc}"
            ) from None
        except (AuthError, NotFound):
            raise
        except CloudError as exc:
            self.journal.mark(keys, "imported", "error", last_error=str(exc))
            self._sit_out(keys)
            self.progress.advance(Step.IMPORT, len(chunk))
            return []
        by_identifier = {d.identifier.lower(): d for d in chunk}
        verdicts: dict[int, tuple[str, str | None]] = {}
        for ids, verdict in (
            (result.updated_ids, None),
            (result.existing_ids, None),
            (result.nonmember_ids, "another-product"),
            (result.protected_ids, "device-protected"),
            (result.invalid_ids, "rejected"),
        ):
            for identifier in ids:
                device = by_identifier.get(identifier.lower())
                if device is not None and device.key not in verdicts:
                    verdicts[device.key] = (
                        ("done", None) if verdict is None else ("failed", verdict)
                    )
        rows: list[dict[str, Any]] = []
        rejected: list[DeviceState] = []
        for device in chunk:
            status, failure = verdicts.get(device.key, ("error", None))
            row: dict[str, Any] = {"id": device.key, "imported": status, "failure": failure}
            if status == "done":
                row["last_error"] = None
                if self.claim_mode == "import":
                    row["claimed"] = "done"
            elif status == "failed":
                row.update(
                    grouped="skipped", named="skipped", claimed="skipped", verified="skipped"
                )
                row["last_error"] = FAILURE_REASONS[failure or "rejected"]
                if failure == "rejected":
                    rejected.append(device)
            else:
                row["last_error"] = "the cloud's import answer did not mention this identifier"
                self._sit_out([device.key])
            rows.append(row)
        self.journal.update_each(rows)
        self.progress.advance(Step.IMPORT, len(chunk))
        return rejected

    async def _diagnose(self, rejected: list[DeviceState]) -> None:
        """Say more than "rejected" where it is cheap: a few serial lookups for serial inputs.

        The import answer puts unknown, other-product and wrong-platform devices
        in one array. For serial-number inputs, the serial lookup (50/hour, so
        only ``diagnose`` of them) tells unknown serials and platforms apart.
        """
        candidates = [d for d in rejected if d.id_kind == "serial number"][: self.options.diagnose]
        if not candidates:
            return
        platform = await self._product_platform()
        rows: list[dict[str, Any]] = []
        for device in candidates:
            try:
                found = await self.client.lookup_serial(device.identifier)
            except SerialBudgetExhausted:
                break
            except NotFound:
                reason = "unknown-id"
            except CloudError:
                continue
            else:
                if platform is not None and found.platform_id not in (None, platform):
                    reason = "platform-mismatch"
                else:
                    reason = "another-product"
                if found.device_id:
                    rows.append({"id": device.key, "device_id": found.device_id})
            rows.append(
                {"id": device.key, "failure": reason, "last_error": FAILURE_REASONS[reason]}
            )
        self.journal.update_each(_merge_rows(rows))

    async def _product_platform(self) -> int | None:
        page = await self.client.list_product_devices(self.product, per_page=1)
        return page.devices[0].platform_id if page.devices else None

    # -- learning ids and serials from listings ---------------------------------------------

    async def _listing(self, groups: Sequence[str]) -> dict[str, Device]:
        """Every device of the product (or of ``groups``), by id, serial, IMEI and ICCID.

        The first page says how many there are; the rest are fetched concurrently,
        so a long listing costs one round trip more than a short one, not one per page.
        """
        size = self.options.page_size
        first = await self.client.list_product_devices(self.product, groups=groups, per_page=size)
        rest = await self._bounded(
            self.client.list_product_devices(self.product, groups=groups, page=n, per_page=size)
            for n in range(2, first.total_pages + 1)
        )
        index: dict[str, Device] = {}
        for page in (first, *rest):
            for device in page.devices:
                index[device.id] = device
                for alias in (device.serial_number, device.imei, device.iccid):
                    if alias:
                        index.setdefault(alias.lower(), device)
        return index

    async def _step_locate(self, devices: tuple[DeviceState, ...]) -> None:
        """Device IDs for devices given by serial, IMEI or ICCID.

        One page of the product listing tells how many pages there are; if
        that is fewer than the devices to find, the whole listing is read, else
        each serial is looked up with the listing's ``serialNumber`` filter.
        The 50-per-hour serial endpoint is never used for this.
        """
        first = await self.client.list_product_devices(
            self.product, per_page=self.options.page_size
        )
        found: dict[str, Device] = {}
        if first.total_pages <= len(devices) or any(d.id_kind != "serial number" for d in devices):
            found = await self._listing(())
        else:
            pages = await self._bounded(
                self.client.list_product_devices(self.product, serial_number=d.identifier)
                for d in devices
            )
            for page in pages:
                for listed in page.devices:
                    if listed.serial_number:
                        found[listed.serial_number.lower()] = listed
        rows: list[dict[str, Any]] = []
        for wanted in devices:
            hit = found.get(wanted.identifier.lower())
            if hit is None:
                rows.append(
                    {
                        "id": wanted.key,
                        "failure": "not-listed",
                        "last_error": FAILURE_REASONS["not-listed"],
                        "grouped": "skipped",
                        "named": "skipped",
                        "claimed": "skipped",
                        "verified": "skipped",
                    }
                )
            else:
                rows.append(
                    {"id": wanted.key, "device_id": hit.id, "serial_number": hit.serial_number}
                )
        self.journal.update_each(rows)
        self.progress.advance(Step.LOCATE, len(devices))

    async def _step_serial(self, devices: tuple[DeviceState, ...]) -> None:
        """Serials (for naming) of devices given by ID, from the group's paged listing."""
        found = await self._listing([self.group] if self.group else ())
        rows: list[dict[str, Any]] = []
        for device in devices:
            hit = found.get(device.device_id or "")
            if hit is not None and hit.serial_number:
                rows.append({"id": device.key, "serial_number": hit.serial_number.upper()})
            elif hit is not None:
                rows.append(
                    {
                        "id": device.key,
                        "named": "skipped",
                        "last_error": "the cloud has no serial number for this device; not renamed",
                    }
                )
            else:
                rows.append(
                    {
                        "id": device.key,
                        "named": "error",
                        "last_error": "not in the group listing yet; serial unknown",
                    }
                )
                self._sit_out([device.key])
        self.journal.update_each(rows)
        self.progress.advance(Step.SERIAL, len(devices))

    # -- group membership -----------------------------------------------------------------------

    async def _step_join(self, devices: tuple[DeviceState, ...]) -> None:
        assert self.group is not None
        group = self.group
        size = self.options.group_chunk
        chunks = [devices[i : i + size] for i in range(0, len(devices), size)]

        async def join(chunk: tuple[DeviceState, ...]) -> None:
            keys = [d.key for d in chunk]
            self.journal.mark(keys, "grouped", "sent")
            try:
                await self.client.update_device_groups(
                    self.product, [d.device_id or "" for d in chunk], add=[group]
                )
            except (AuthError, NotFound):
                raise
            except CloudError as exc:
                self.journal.mark(keys, "grouped", "error", last_error=str(exc))
                self._sit_out(keys)
            else:
                self.journal.mark(keys, "grouped", "done")
            self.progress.advance(Step.JOIN, len(chunk))

        await self._bounded(join(c) for c in chunks)

    # -- per-device steps: rename and claim -------------------------------------------------

    async def _per_device(
        self,
        step: Step,
        column: str,
        devices: tuple[DeviceState, ...],
        call: Callable[[DeviceState], Awaitable[object]],
        on_error: Callable[[DeviceState, CloudError], dict[str, Any] | None] | None = None,
    ) -> None:
        """One request per device, concurrently, results written in batches.

        All devices are marked ``sent`` first (one transaction); results are
        written every ``flush_every`` answers. A crash in between leaves
        ``sent`` rows, which the next run replays: renames and claims are
        idempotent.
        """
        self.journal.mark([d.key for d in devices], column, "sent")
        pending: list[dict[str, Any]] = []
        flush_every = 100

        def flush() -> None:
            self.journal.update_each(pending)
            pending.clear()

        async def one(device: DeviceState) -> None:
            try:
                await call(device)
            except (AuthError, NotFound):
                raise
            except CloudError as exc:
                row = on_error(device, exc) if on_error is not None else None
                if row is None:
                    row = {column: "error", "last_error": str(exc)}
                    self._sit_out([device.key])
                pending.append({"id": device.key, **row})
            else:
                pending.append({"id": device.key, column: "done", "last_error": None})
            self.progress.advance(step)
            if len(pending) >= flush_every:
                flush()

        try:
            await self._bounded(one(d) for d in devices)
        finally:
            flush()

    async def _step_name(self, devices: tuple[DeviceState, ...]) -> None:
        async def rename(device: DeviceState) -> object:
            assert device.device_id is not None and device.serial is not None
            return await self.client.update_device(
                self.product, device.device_id, name=device.serial
            )

        await self._per_device(Step.NAME, "named", devices, rename)

    async def _step_claim(self, devices: tuple[DeviceState, ...]) -> None:
        async def claim(device: DeviceState) -> object:
            assert device.device_id is not None
            return await self.client.claim_device(device.device_id)

        def on_error(_device: DeviceState, exc: CloudError) -> dict[str, Any] | None:
            if isinstance(exc, PermissionDenied) and exc.belongs_to_someone_else:
                return {
                    "claimed": "failed",
                    "failure": "owned-by-someone-else",
                    "verified": "skipped",
                    "last_error": FAILURE_REASONS["owned-by-someone-else"],
                }
            if isinstance(exc, PermissionDenied):
                raise JobStopped(
                    f"this token may not claim devices ({exc}); API users cannot claim: use "
                    f"--claim import --claim-user EMAIL, or --claim none"
                ) from None
            return None

        await self._per_device(Step.CLAIM, "claimed", devices, claim, on_error)

    # -- verify -----------------------------------------------------------------------------

    async def _step_verify(self, devices: tuple[DeviceState, ...]) -> None:
        """List the group and reconcile each device; send back what the cloud disagrees with."""
        self.verify_rounds += 1
        last_round = self.verify_rounds >= self.options.verify_rounds
        listed = await self._listing([self.group] if self.group else ())
        rows: list[dict[str, Any]] = []
        for device in devices:
            seen = listed.get(device.device_id or "")
            fixes = _disagreements(device, seen, self.group, self.claim_mode)
            if not fixes:
                rows.append({"id": device.key, "verified": "done", "last_error": None})
            elif last_round:
                rows.append(
                    {
                        "id": device.key,
                        "verified": "error",
                        "last_error": "still differs in the cloud: " + ", ".join(fixes),
                    }
                )
                self._sit_out([device.key])
            else:
                rows.append({"id": device.key, **dict.fromkeys(fixes.values(), "pending")})
        self.journal.update_each(rows)
        self.progress.advance(Step.VERIFY, len(devices))


def _disagreements(
    device: DeviceState, seen: Device | None, group: str | None, claim_mode: str
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


def _merge_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        merged.setdefault(row["id"], {}).update(row)
    return list(merged.values())


def _stop_message(exc: CloudError, product: str) -> str:
    if isinstance(exc, AuthError):
        return f"the access token was refused ({exc.message}); get a new token and run again"
    return f"product {product!r} not found or not accessible with this token ({exc.message})"

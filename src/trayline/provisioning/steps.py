"""The provisioning steps: one handler per step of :mod:`trayline.provisioning.plan`.

Each handler gets the devices the planner chose, sends its requests through the
client's shared rate limiter with at most ``concurrency`` in flight (a pool of
workers pulling from the list, not a task per device), and records what came
back as typed :class:`~trayline.provisioning.plan.Change` s.

The intent is written when a request's rate-limit slot is granted, just before
its bytes go out (the client's :data:`~trayline.particle.client.BEFORE_SEND`
hook), and every answer is recorded as it arrives: the journal's writer commits
both in groups every few tens of milliseconds. A process killed at any moment
therefore repeats only the requests that were on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from trayline.particle.client import BEFORE_SEND, ParticleClient, SerialBudgetExhausted
from trayline.particle.errors import AuthError, BadRequest, CloudError, NotFound, PermissionDenied
from trayline.particle.resources import Device, DevicePage, SerialLookupResult
from trayline.provisioning.journal import Journal
from trayline.provisioning.plan import (
    FAILURE_REASONS,
    Change,
    DeviceState,
    Listed,
    Step,
    disagreements,
    import_verdicts,
)

__all__ = ["JobStopped", "ProgressSink", "StepContext", "run_step", "worker_pool"]

T = TypeVar("T")


class JobStopped(Exception):
    """The job cannot go on (bad token, unknown product, a permission it lacks): exit 3."""


class ProgressSink(Protocol):
    """Where the engine reports progress; the CLI draws bars, tests count."""

    def step_started(self, step: Step, total: int) -> None: ...
    def advance(self, step: Step, count: int = 1) -> None: ...
    def step_finished(self, step: Step) -> None: ...
    def notice(self, message: str) -> None: ...


@dataclass
class StepContext:
    """What every step handler needs: the job's settings and the run's shared state."""

    client: ParticleClient
    journal: Journal
    progress: ProgressSink
    product: str
    group: str | None
    claim_mode: str
    claim_user: str | None
    concurrency: int
    chunk: int
    group_chunk: int
    page_size: int
    verify_rounds: int
    diagnose: int
    group_description: str
    group_color: str
    lease_lost: Callable[[], bool] = lambda: False
    """True once another process has taken this job's lease: no request may go out then."""
    budget_wait: Callable[[datetime], Awaitable[None]] | None = None
    """With ``--wait-for-budget``: how to wait for the serial-lookup budget (a countdown)."""
    sitting_out: set[int] = field(default_factory=set)
    rounds_done: int = 0
    group_failed: bool = False


async def worker_pool(items: Sequence[T], work: Callable[[T], Awaitable[None]], size: int) -> None:
    """Run ``work`` on every item with ``size`` workers; the first error cancels the rest."""
    source = iter(items)

    async def worker() -> None:
        for item in source:
            await work(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(size, len(items)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _intent(ctx: StepContext, keys: Sequence[int], column: str) -> None:
    """Make the next request of this task write its intent when its slot is granted."""

    async def hook() -> None:
        if ctx.lease_lost():
            raise JobStopped("another process took over this job's lease; stopped")
        await ctx.journal.intend(keys, column)

    BEFORE_SEND.set(hook)


async def run_step(ctx: StepContext, step: Step, devices: tuple[DeviceState, ...]) -> None:
    """Run one step. A request the whole step needs (a listing) that fails after its
    retries leaves the step's devices as they are, sitting out this run: the next run
    tries them again."""
    handler = _HANDLERS[step]
    ctx.progress.step_started(step, max(len(devices), 1))
    try:
        await handler(ctx, devices)
    except (AuthError, NotFound, JobStopped):
        raise
    except PermissionDenied as exc:
        raise JobStopped(f"the token may not {step} in product {ctx.product}: {exc}") from None
    except CloudError as exc:
        if not devices:
            raise JobStopped(f"{step}: {exc}") from None
        ctx.journal.record([Change(d.key, last_error=f"{step}: {exc}") for d in devices])
        ctx.sitting_out.update(d.key for d in devices)
        ctx.progress.notice(f"{step} failed ({exc}); {len(devices)} devices wait for the next run")
    finally:
        ctx.progress.step_finished(step)


# -- group ----------------------------------------------------------------------------------


async def step_group(ctx: StepContext, _devices: tuple[DeviceState, ...]) -> None:
    assert ctx.group is not None
    ctx.journal.set_job(group_status="sent")
    try:
        existing = await ctx.client.list_groups(ctx.product, name=ctx.group)
        if not any(g.name == ctx.group for g in existing):
            try:
                await ctx.client.create_group(
                    ctx.product, ctx.group, description=ctx.group_description, color=ctx.group_color
                )
            except BadRequest as exc:
                if not exc.duplicate:
                    raise JobStopped(f"cannot create group {ctx.group!r}: {exc}") from None
    except PermissionDenied as exc:
        raise JobStopped(f"the token may not manage groups of {ctx.product}: {exc}") from None
    except (AuthError, NotFound):
        raise
    except CloudError as exc:
        ctx.journal.set_job(group_status="error", last_error=str(exc))
        ctx.group_failed = True
        raise JobStopped(f"could not make sure group {ctx.group!r} exists: {exc}") from None
    ctx.journal.set_job(group_status="done")
    ctx.progress.advance(Step.GROUP)


# -- import ---------------------------------------------------------------------------------


async def step_import(ctx: StepContext, devices: tuple[DeviceState, ...]) -> None:
    chunks = [devices[i : i + ctx.chunk] for i in range(0, len(devices), ctx.chunk)]
    rejected: list[DeviceState] = []

    async def one(chunk: tuple[DeviceState, ...]) -> None:
        rejected.extend(await _import_chunk(ctx, chunk))

    await worker_pool(chunks, one, ctx.concurrency)
    if rejected:
        await _diagnose(ctx, rejected)


async def _import_chunk(ctx: StepContext, chunk: tuple[DeviceState, ...]) -> list[DeviceState]:
    keys = [d.key for d in chunk]
    claim_user = ctx.claim_user if ctx.claim_mode == "import" else None
    _intent(ctx, keys, "imported")
    try:
        result = await ctx.client.import_devices(
            ctx.product, [d.identifier for d in chunk], claim_user=claim_user
        )
    except PermissionDenied as exc:
        raise JobStopped(f"the token may not import into product {ctx.product}: {exc}") from None
    except (AuthError, NotFound):
        raise
    except CloudError as exc:
        ctx.journal.record([Change(k, imported="error", last_error=str(exc)) for k in keys])
        ctx.sitting_out.update(keys)
        ctx.progress.advance(Step.IMPORT, len(chunk))
        return []
    buckets = {
        "updated": result.updated_ids,
        "existing": result.existing_ids,
        "nonmember": result.nonmember_ids,
        "protected": result.protected_ids,
        "invalid": result.invalid_ids,
    }
    changes, rejected = import_verdicts(chunk, buckets, claim_on_import=ctx.claim_mode == "import")
    ctx.sitting_out.update(c.key for c in changes if c.imported == "error")
    ctx.journal.record(changes)
    ctx.progress.advance(Step.IMPORT, len(chunk))
    return rejected


async def _diagnose(ctx: StepContext, rejected: list[DeviceState]) -> None:
    """Say more than "rejected" where it is cheap: a few serial lookups for serial inputs.

    The import answer puts unknown, other-product and wrong-platform devices in
    one array. For serial-number inputs the serial lookup (50/hour, so only
    ``diagnose`` of them) tells them apart. When that budget is spent the run
    says so at once, with when it refills, and goes on without the detail.
    """
    candidates = [d for d in rejected if d.id_kind == "serial number"][: ctx.diagnose]
    if not candidates:
        return
    page = await ctx.client.list_product_devices(ctx.product, per_page=1)
    platform = page.devices[0].platform_id if page.devices else None
    changes: list[Change] = []
    for device in candidates:
        try:
            found = await _lookup(ctx, device.identifier)
        except SerialBudgetExhausted as exc:
            ctx.progress.notice(
                f"serial-lookup budget spent (50 per hour): refused serials keep the reason "
                f"'refused by the cloud'; it refills at {exc.next_at:%H:%M:%S} UTC "
                f"(--wait-for-budget waits for it)"
            )
            break
        except NotFound:
            reason = "unknown-id"
            device_id: str | None = None
        except CloudError:
            continue
        else:
            mismatch = platform is not None and found.platform_id not in (None, platform)
            reason = "platform-mismatch" if mismatch else "another-product"
            device_id = found.device_id
        changes.append(
            Change(
                device.key,
                failure=reason,
                last_error=FAILURE_REASONS[reason],
                device_id=device_id or device.device_id,
            )
        )
    ctx.journal.record(changes)


async def _lookup(ctx: StepContext, serial: str) -> SerialLookupResult:
    """A serial lookup; with ``budget_wait``, a spent budget is waited for, then retried."""
    while True:
        try:
            return await ctx.client.lookup_serial(serial)
        except SerialBudgetExhausted as exc:
            if ctx.budget_wait is None:
                raise
            await ctx.budget_wait(exc.next_at)


# -- listings -------------------------------------------------------------------------------


def _slim(device: Device) -> Listed:
    return Listed(
        device.id,
        device.serial_number,
        device.name,
        device.groups,
        device.owner,
        device.platform_id,
    )


async def _listing(ctx: StepContext, groups: Sequence[str]) -> dict[str, Listed]:
    """The product's devices (or the group's), by id, serial, IMEI and ICCID: only what is used.

    The first page says how many there are; the rest are fetched concurrently.
    """
    first = await _first_page(ctx, groups)
    pages: list[DevicePage] = [first]

    async def fetch(n: int) -> None:
        pages.append(
            await ctx.client.list_product_devices(
                ctx.product, groups=groups, page=n, per_page=ctx.page_size
            )
        )

    await worker_pool(range(2, first.total_pages + 1), fetch, ctx.concurrency)
    index: dict[str, Listed] = {}
    for page in pages:
        for device in page.devices:
            listed = _slim(device)
            index[device.id] = listed
            for alias in (device.serial_number, device.imei, device.iccid):
                if alias:
                    index.setdefault(alias.lower(), listed)
    return index


SAFE_PAGE_SIZE = 100


async def _first_page(ctx: StepContext, groups: Sequence[str]) -> DevicePage:
    """The listing's first page; a cloud that refuses the page size gets the safe one."""
    try:
        return await ctx.client.list_product_devices(
            ctx.product, groups=groups, per_page=ctx.page_size
        )
    except BadRequest:
        if ctx.page_size <= SAFE_PAGE_SIZE:
            raise
        ctx.page_size = SAFE_PAGE_SIZE
        return await ctx.client.list_product_devices(
            ctx.product, groups=groups, per_page=ctx.page_size
        )


def _job_groups(ctx: StepContext) -> tuple[str, ...]:
    return (ctx.group,) if ctx.group else ()


async def step_locate(ctx: StepContext, devices: tuple[DeviceState, ...]) -> None:
    """Device IDs for devices given by serial, IMEI or ICCID.

    If the product listing has fewer pages than devices to find, it is read
    whole; else each serial is looked up with the listing's ``serialNumber``
    filter. The 50-per-hour serial endpoint is never used for this.
    """
    first = await _first_page(ctx, ())
    found: dict[str, Listed] = {}
    if first.total_pages <= len(devices) or any(d.id_kind != "serial number" for d in devices):
        found = await _listing(ctx, ())
    else:

        async def by_serial(device: DeviceState) -> None:
            page = await ctx.client.list_product_devices(
                ctx.product, serial_number=device.identifier
            )
            for listed in page.devices:
                if listed.serial_number:
                    found[listed.serial_number.lower()] = _slim(listed)

        await worker_pool(devices, by_serial, ctx.concurrency)
    changes = []
    for wanted in devices:
        hit = found.get(wanted.identifier.lower())
        if hit is None:
            changes.append(Change.fail(wanted.key, "not-listed"))
        else:
            changes.append(Change(wanted.key, device_id=hit.id, serial=hit.serial_number))
    ctx.journal.record(changes)
    ctx.progress.advance(Step.LOCATE, len(devices))


async def step_serial(ctx: StepContext, devices: tuple[DeviceState, ...]) -> None:
    """Serials (for naming) of devices given by ID, from the group's paged listing."""
    found = await _listing(ctx, _job_groups(ctx))
    changes = []
    for device in devices:
        hit = found.get(device.device_id or "")
        if hit is not None and hit.serial_number:
            changes.append(Change(device.key, serial=hit.serial_number.upper()))
        elif hit is not None:
            changes.append(
                Change(
                    device.key,
                    named="skipped",
                    last_error="the cloud has no serial number for this device; not renamed",
                )
            )
        else:
            changes.append(
                Change(
                    device.key,
                    named="error",
                    last_error="not in the group listing yet; serial unknown",
                )
            )
            ctx.sitting_out.add(device.key)
    ctx.journal.record(changes)
    ctx.progress.advance(Step.SERIAL, len(devices))


# -- group membership -------------------------------------------------------------------------


async def step_join(ctx: StepContext, devices: tuple[DeviceState, ...]) -> None:
    assert ctx.group is not None
    group = ctx.group
    size = ctx.group_chunk
    chunks = [devices[i : i + size] for i in range(0, len(devices), size)]

    async def join(chunk: tuple[DeviceState, ...]) -> None:
        keys = [d.key for d in chunk]
        _intent(ctx, keys, "grouped")
        try:
            await ctx.client.update_device_groups(
                ctx.product, [d.device_id or "" for d in chunk], add=[group]
            )
        except (AuthError, NotFound):
            raise
        except CloudError as exc:
            ctx.journal.record([Change(k, grouped="error", last_error=str(exc)) for k in keys])
            ctx.sitting_out.update(keys)
        else:
            ctx.journal.record([Change(k, grouped="done") for k in keys])
        ctx.progress.advance(Step.JOIN, len(chunk))

    await worker_pool(chunks, join, ctx.concurrency)


# -- per-device steps: rename and claim -----------------------------------------------------

OnError = Callable[[DeviceState, CloudError], Change | None]


async def _per_device(
    ctx: StepContext,
    step: Step,
    column: str,
    devices: tuple[DeviceState, ...],
    call: Callable[[DeviceState], Awaitable[object]],
    on_error: OnError | None = None,
) -> None:
    """One request per device through the worker pool; each answer recorded as it arrives."""

    async def one(device: DeviceState) -> None:
        _intent(ctx, [device.key], column)
        try:
            await call(device)
        except (AuthError, NotFound):
            raise
        except CloudError as exc:
            change = on_error(device, exc) if on_error is not None else None
            if change is None:
                change = Change(device.key, last_error=str(exc), **{column: "error"})
                ctx.sitting_out.add(device.key)
            ctx.journal.record([change])
        else:
            ctx.journal.record([Change(device.key, last_error=None, **{column: "done"})])
        ctx.progress.advance(step)

    await worker_pool(devices, one, ctx.concurrency)


async def step_name(ctx: StepContext, devices: tuple[DeviceState, ...]) -> None:
    async def rename(device: DeviceState) -> object:
        assert device.device_id is not None and device.serial is not None
        return await ctx.client.update_device(ctx.product, device.device_id, name=device.serial)

    await _per_device(ctx, Step.NAME, "named", devices, rename)


async def step_claim(ctx: StepContext, devices: tuple[DeviceState, ...]) -> None:
    async def claim(device: DeviceState) -> object:
        assert device.device_id is not None
        return await ctx.client.claim_device(device.device_id)

    def on_error(device: DeviceState, exc: CloudError) -> Change | None:
        if isinstance(exc, PermissionDenied) and exc.belongs_to_someone_else:
            return Change(
                device.key,
                claimed="failed",
                failure="owned-by-someone-else",
                verified="skipped",
                last_error=FAILURE_REASONS["owned-by-someone-else"],
            )
        if isinstance(exc, PermissionDenied):
            raise JobStopped(
                f"this token may not claim devices ({exc}); API users cannot claim: use "
                f"--claim import --claim-user EMAIL, or --claim none"
            ) from None
        return None

    await _per_device(ctx, Step.CLAIM, "claimed", devices, claim, on_error)


# -- verify -----------------------------------------------------------------------------------


async def step_verify(ctx: StepContext, devices: tuple[DeviceState, ...]) -> None:
    """List the group and reconcile each device; send back what the cloud disagrees with."""
    ctx.rounds_done += 1
    last_round = ctx.rounds_done >= ctx.verify_rounds
    listed = await _listing(ctx, _job_groups(ctx))
    changes: list[Change] = []
    for device in devices:
        fixes = disagreements(device, listed.get(device.device_id or ""), ctx.group, ctx.claim_mode)
        if not fixes:
            changes.append(Change(device.key, verified="done", last_error=None))
        elif last_round:
            changes.append(
                Change(
                    device.key,
                    verified="error",
                    last_error="still differs in the cloud: " + ", ".join(fixes),
                )
            )
            ctx.sitting_out.add(device.key)
        else:
            redo: dict[str, Any] = dict.fromkeys(fixes.values(), "pending")
            changes.append(Change(device.key, **redo))
    ctx.journal.record(changes)
    ctx.progress.advance(Step.VERIFY, len(devices))


Handler = Callable[[StepContext, tuple[DeviceState, ...]], Awaitable[None]]
_HANDLERS: dict[Step, Handler] = {
    Step.GROUP: step_group,
    Step.IMPORT: step_import,
    Step.LOCATE: step_locate,
    Step.JOIN: step_join,
    Step.SERIAL: step_serial,
    Step.NAME: step_name,
    Step.CLAIM: step_claim,
    Step.VERIFY: step_verify,
}

"""The provisioning engine against the local cloud: results, failures, faults and resume."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from cloudkit import OTHER_PRODUCT, PRODUCT, Cloud, make_cloud
from cloudkit import UNLIMITED as UNLIMITED_LIMIT

from trayline.inputs import parse_inputs
from trayline.particle.client import ParticleClient
from trayline.particle.emulator import EmulatorConfig
from trayline.provisioning.engine import EngineOptions, Outcome, open_job, run_job
from trayline.provisioning.journal import CloudIdentity, JobSpec
from trayline.reports.provisioning import job_report
from trayline.store.db import Store

IDENTITY = CloudIdentity("http://cloud.test", "maker@example.com")


def spec(
    group: str | None = "batch-1", *, claim: str = "none", claim_user: str | None = None
) -> JobSpec:
    return JobSpec(str(PRODUCT), group, False, True, claim, claim_user, "tray.txt")


def inputs(lines: list[str]) -> Any:
    result = parse_inputs(("\n".join(lines) + "\n").encode(), path="tray.txt")
    assert result.ok, result.problems
    return result.devices


async def provision(
    cloud: Cloud,
    store: Store,
    lines: list[str],
    job_spec: JobSpec | None = None,
    options: EngineOptions | None = None,
    client: ParticleClient | None = None,
) -> Outcome:
    options = options or EngineOptions(chunk=100, group_chunk=100, concurrency=16)
    journal, _ = open_job(store, job_spec or spec(), IDENTITY, inputs(lines), options)
    async with client or cloud.client() as c:
        outcome = await run_job(c, journal, options)
    # The engine plans from the journal's mirror of its own writes: it must be the store's truth.
    assert await journal.current() == journal.state()
    return outcome


def product_view(cloud: Cloud) -> dict[str, tuple[Any, ...]]:
    """The cloud state a provisioning job is responsible for, per device."""
    return {
        d["id"]: (d["product_id"], tuple(sorted(d["groups"])), d["name"], d["owner"])
        for d in cloud.state()["devices"]  # type: ignore[union-attr]
    }


async def test_tray_by_ids_and_serials(cloud: Cloud, store: Store) -> None:
    devices = cloud.app.cloud.make_devices("BRN404", 120)
    lines = [d.id for d in devices[:70]] + [d.serial_number for d in devices[70:]]
    outcome = await provision(cloud, store, lines)
    assert outcome.exit_code == 0
    assert outcome.counts == {"devices": 120, "provisioned": 120, "failed": 0, "remaining": 0}
    for d in devices:
        assert d.product_id == PRODUCT
        assert d.groups == ["batch-1"] or list(d.groups) == ["batch-1"]
        assert d.name == d.serial_number
    # bulk endpoints: about one request per device (the rename)
    assert outcome.requests <= 1.1 * 120 + 10
    rows = job_report(store, outcome.job_id)
    assert all(r.state == "provisioned" and r.device_id and r.serial_number for r in rows)
    # one intent per request-sending step: import, add to group, rename
    assert {r.attempts for r in rows} == {3}


async def test_rerun_of_finished_job_sends_nothing(cloud: Cloud, store: Store) -> None:
    devices = cloud.app.cloud.make_devices("BRN404", 10)
    lines = [d.id for d in devices]
    first = await provision(cloud, store, lines)
    second = await provision(cloud, store, lines)
    assert first.job_id == second.job_id
    assert second.requests == 0 and second.exit_code == 0


async def test_mixed_input_reasons(store: Store) -> None:
    cloud = make_cloud()
    good = cloud.app.cloud.make_devices("BRN404", 20)
    elsewhere = cloud.app.cloud.make_devices("BRN404", 2, product_id=OTHER_PRODUCT)
    bsom = cloud.app.cloud.make_devices("B404", 2)
    protected = cloud.app.cloud.make_devices("BRN404", 1, protected=True)
    unknown_id = "ffffffffffffffffffffffff"
    unknown_serial = "P028ZZZZZZZZZZZ"
    lines = (
        [d.id for d in good[:10]]
        + [d.serial_number for d in good[10:]]
        + [elsewhere[0].serial_number, elsewhere[1].id, bsom[0].serial_number, bsom[1].id]
        + [protected[0].id, unknown_id, unknown_serial]
    )
    outcome = await provision(cloud, store, lines)
    assert outcome.exit_code == 1
    assert outcome.counts["provisioned"] == 20 and outcome.counts["failed"] == 7
    reasons = {r.identifier: r.reason for r in job_report(store, outcome.job_id)}
    assert "another product" in reasons[elsewhere[0].serial_number]
    assert "platform" in reasons[bsom[0].serial_number]
    assert "unknown" in reasons[unknown_serial]
    assert "Device Protection" in reasons[protected[0].id]
    for identifier in (elsewhere[1].id, bsom[1].id, unknown_id):
        assert "refused by the cloud" in reasons[identifier]
    assert elsewhere[0].product_id == OTHER_PRODUCT and bsom[0].product_id is None


async def test_nonmember_bucket_is_named(store: Store) -> None:
    cloud = make_cloud(EmulatorConfig(seed=3, other_product_bucket="nonmemberDeviceIds"))
    elsewhere = cloud.app.cloud.make_devices("BRN404", 1, product_id=OTHER_PRODUCT)
    good = cloud.app.cloud.make_devices("BRN404", 3)
    outcome = await provision(cloud, store, [elsewhere[0].id, *(d.id for d in good)])
    reasons = {r.identifier: r.reason for r in job_report(store, outcome.job_id)}
    assert reasons[elsewhere[0].id] == "already in another product"


async def test_claim_modes(store: Store) -> None:
    cloud = make_cloud()
    devices = cloud.app.cloud.make_devices("BRN404", 6)
    taken = cloud.app.cloud.make_devices("BRN404", 1, owner="someone@else.com")
    outcome = await provision(
        cloud, store, [d.id for d in devices] + [taken[0].id], spec(claim="each")
    )
    assert outcome.exit_code == 1
    assert all(d.owner == "maker@example.com" for d in devices)
    reasons = {r.identifier: r.reason for r in job_report(store, outcome.job_id)}
    assert reasons[taken[0].id] == "claimed by another account"


async def test_claim_on_import(store: Store) -> None:
    cloud = make_cloud()
    devices = cloud.app.cloud.make_devices("BRN404", 4)
    job = spec(claim="import", claim_user="admin@example.com")
    outcome = await provision(cloud, store, [d.id for d in devices], job)
    assert outcome.exit_code == 0
    assert all(d.owner == "admin@example.com" for d in devices)


async def test_bad_token_stops_with_exit_3(cloud: Cloud, store: Store) -> None:
    devices = cloud.app.cloud.make_devices("BRN404", 3)
    cloud.token = "0" * 40
    outcome = await provision(cloud, store, [d.id for d in devices])
    assert outcome.exit_code == 3 and "token" in (outcome.stopped or "")


async def test_unknown_product_stops_with_exit_3(cloud: Cloud, store: Store) -> None:
    devices = cloud.app.cloud.make_devices("BRN404", 3)
    job = JobSpec("no-such-product", None, False, True, "none", None, "tray.txt")
    outcome = await provision(cloud, store, [d.id for d in devices], job)
    assert outcome.exit_code == 3 and "not found" in (outcome.stopped or "")


async def test_faults_300_devices_all_provisioned(store: Store) -> None:
    """10% server errors, dropped connections and bursts of 429s: every valid device ends done.

    The cloud allows 40 requests/s and the client assumes no limit, so 429s come however
    slow the machine running the test is.
    """
    cloud = make_cloud(
        EmulatorConfig(seed=11, error_rate=0.10, drop_rate=0.05, rate_limit=(40, 1.0))
    )
    devices = cloud.app.cloud.make_devices("BRN404", 300)
    lines = [d.id for d in devices[:240]] + [d.serial_number for d in devices[240:]]
    outcome = await provision(
        cloud, store, lines, options=EngineOptions(chunk=100, group_chunk=100, concurrency=32)
    )
    if outcome.counts["remaining"]:  # a device can exhaust its retries: the re-run finishes it
        outcome = await provision(cloud, store, lines)
    assert outcome.counts == {"devices": 300, "provisioned": 300, "failed": 0, "remaining": 0}
    assert all(d.product_id == PRODUCT and d.name == d.serial_number and d.groups for d in devices)
    counters = cloud.app.counters.to_dict()
    assert counters["by_status"].get("429", 0) > 0
    assert counters["by_status"].get("500", 0) + counters["by_status"].get("503", 0) > 0


class Crash(Exception):
    pass


class CrashingClient(ParticleClient):
    """A client that dies (like a killed process) after a random number of requests."""

    def __init__(self, *args: Any, crash_after: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.crash_after = crash_after

    async def _request(self, *args: Any, **kw: Any) -> Any:
        if self.requests_sent >= self.crash_after:
            raise Crash()
        return await super()._request(*args, **kw)


async def test_crash_anywhere_then_resume_matches_clean_run(tmp_path: Any) -> None:
    """Killed after k requests (k random, 25 times), re-run: same cloud state as a clean run."""
    import httpx2

    from trayline.particle.auth import AccessToken
    from trayline.store.db import open_store

    def fresh() -> tuple[Cloud, list[str]]:
        cloud = make_cloud(EmulatorConfig(seed=5))
        devices = cloud.app.cloud.make_devices("BRN404", 60)
        return cloud, [d.id for d in devices[:30]] + [d.serial_number for d in devices[30:]]

    reference, lines = fresh()
    ref_store = open_store(f"sqlite:///{tmp_path / 'ref.db'}")
    await provision(reference, ref_store, lines, spec(claim="each"))
    expected = product_view(reference)

    rng = random.Random(1)
    for attempt in range(25):
        cloud, lines = fresh()
        store = open_store(f"sqlite:///{tmp_path / f'run{attempt}.db'}")
        crash_at = rng.randrange(1, 80)
        client = CrashingClient(
            AccessToken(cloud.token),
            base_url="http://cloud.test",
            transport=httpx2.ASGITransport(app=cloud.app),
            crash_after=crash_at,
        )
        with pytest.raises(Crash):
            await provision(cloud, store, lines, spec(claim="each"), client=client)
        outcome = await provision(cloud, store, lines, spec(claim="each"))
        assert outcome.exit_code == 0, (crash_at, outcome)
        assert product_view(cloud) == expected, crash_at
        store.dispose()


async def test_job_stopped_stops_the_run_and_keeps_the_journal(store: Store) -> None:
    """A token that may not claim stops the job (exit 3) with what was done kept."""
    cloud = make_cloud()
    devices = cloud.app.cloud.make_devices("BRN404", 4)
    api_user = cloud.app.cloud.add_token("api-user@api.particle.io", api_user=True)
    cloud.token = api_user
    outcome = await provision(cloud, store, [d.id for d in devices], spec(claim="each"))
    assert outcome.exit_code == 3
    assert outcome.stopped is not None and "--claim import" in outcome.stopped
    assert all(d.product_id == PRODUCT for d in devices), "the import before the stop is kept"


async def test_a_cloud_that_caps_the_page_size_is_still_read_whole(store: Store) -> None:
    """Listings ask for 1000 per page; a cloud serving 25 is followed by its total_pages."""
    cloud = make_cloud(EmulatorConfig(seed=8, max_per_page=25))
    devices = cloud.app.cloud.make_devices("BRN404", 120)
    lines = [d.id for d in devices[:60]] + [d.serial_number for d in devices[60:]]
    outcome = await provision(cloud, store, lines, options=EngineOptions(chunk=100))
    assert outcome.counts["provisioned"] == 120
    assert all(d.name == d.serial_number and d.groups for d in devices)


async def test_a_listing_that_keeps_failing_leaves_devices_for_the_next_run(store: Store) -> None:
    """Listings answering 503 after every retry: no crash; the devices wait; a re-run ends it."""
    import httpx2
    from cloudkit import FAST_RETRY

    from trayline.particle.auth import AccessToken
    from trayline.particle.ratelimit import RateLimiter

    cloud = make_cloud()
    devices = cloud.app.cloud.make_devices("BRN404", 20)
    inner = httpx2.ASGITransport(app=cloud.app)

    class NoListings(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            if request.method == "GET" and request.url.path.endswith("/devices"):
                return httpx2.Response(503, json={"error": "unavailable"})
            return await inner.handle_async_request(request)

    client = ParticleClient(
        AccessToken(cloud.token),
        base_url="http://cloud.test",
        transport=NoListings(),
        limiter=RateLimiter(UNLIMITED_LIMIT),
        retry=FAST_RETRY,
    )
    first = await provision(cloud, store, [d.id for d in devices], client=client)
    assert first.exit_code == 1 and first.counts["remaining"] == 20
    assert all(d.groups == ["batch-1"] for d in devices), "the steps before the listing ran"
    second = await provision(cloud, store, [d.id for d in devices])
    assert second.exit_code == 0 and second.counts["provisioned"] == 20


async def test_a_lost_lease_stops_before_the_next_request(cloud: Cloud, store: Store) -> None:
    """Another process took the job over: no further request goes out from this one."""
    devices = cloud.app.cloud.make_devices("BRN404", 40)
    options = EngineOptions(chunk=100, group_chunk=100, concurrency=4)
    journal, _ = open_job(store, spec(), IDENTITY, inputs([d.id for d in devices]), options)

    def renamed() -> int:
        return sum(1 for d in devices if d.name == d.serial_number)

    def lease_lost() -> bool:  # taken over once five devices are renamed
        return renamed() >= 5

    async with cloud.client() as client:
        outcome = await run_job(client, journal, options, lease_lost=lease_lost)
    assert outcome.exit_code == 3 and "lease" in (outcome.stopped or "")
    assert renamed() <= 5 + options.concurrency, "only the requests already on the wire finish"


class Tamperer:
    """A progress sink that renames some devices in the cloud just before the first verify,
    as someone in the console would: verify must send them back to the name step."""

    def __init__(self, devices: list[Any]) -> None:
        self.devices = devices
        self.verifies = 0
        self.steps: list[str] = []

    def step_started(self, step: Any, total: int) -> None:
        self.steps.append(str(step))
        if str(step) == "verify":
            self.verifies += 1
            if self.verifies == 1:
                for device in self.devices:
                    device.name = "renamed-in-the-console"

    def advance(self, step: Any, count: int = 1) -> None:
        pass

    def step_finished(self, step: Any) -> None:
        pass

    def notice(self, message: str) -> None:
        pass


async def test_verify_sends_back_what_the_cloud_disagrees_with(cloud: Cloud, store: Store) -> None:
    """Devices renamed behind the job's back are renamed again and verified in the same run;
    the journal's mirror (what the engine plans from) equals the store's rows at the end."""
    devices = cloud.app.cloud.make_devices("BRN404", 60)
    options = EngineOptions(chunk=100, group_chunk=100, concurrency=8)
    journal, _ = open_job(store, spec(), IDENTITY, inputs([d.id for d in devices]), options)
    sink = Tamperer(devices[:7])
    async with cloud.client() as client:
        outcome = await run_job(client, journal, options, sink)
    assert outcome.counts == {"devices": 60, "provisioned": 60, "failed": 0, "remaining": 0}
    assert sink.steps[-4:] == ["name", "verify", "name", "verify"]
    assert outcome.by_step["name"] == 60 + 7
    assert all(d.name == d.serial_number for d in devices)
    assert await journal.current() == journal.state()


async def test_an_intent_cancelled_while_it_waits_is_still_mirrored(store: Store) -> None:
    """A worker cancelled while its intent waits for the commit (another device's answer
    stopped the job) has still queued it: the store ends at "sent", and so must the mirror
    the planner reads (CI once saw the mirror at "pending" on PostgreSQL)."""
    from trayline.store.writer import StoreWriter

    devices = inputs([f"e00fce68{n:016x}" for n in range(2)])
    journal, _ = open_job(store, spec(claim="each"), IDENTITY, devices, EngineOptions())
    writer = StoreWriter(store, interval=3600.0, waited_interval=3600.0)
    journal.attach(writer)
    [first, _] = (await journal.current()).devices
    waiting = asyncio.ensure_future(journal.intend([first.key], "claimed"))
    await asyncio.sleep(0)  # the intent runs up to its wait for the commit
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.to_thread(writer.close)  # commits what was queued
    assert journal.state().devices[0].claimed == "sent"
    assert await journal.current() == journal.state()


async def test_an_intent_after_a_send_back_is_committed_after_it(store: Store) -> None:
    """Verify's "pending" and the next step's "sent" for the same device, queued within one
    gathering interval behind another device's rename intent: the store ends at "sent" (the
    writer alone would merge both intents ahead of the results and leave "pending")."""
    from trayline.provisioning.plan import Change
    from trayline.store import jobs
    from trayline.store.writer import StoreWriter

    devices = inputs([f"e00fce68{n:016x}" for n in range(3)])
    journal, _ = open_job(store, spec(), IDENTITY, devices, EngineOptions())
    writer = StoreWriter(store, interval=3600.0)
    journal.attach(writer)
    [first, other, _] = (await journal.current()).devices
    writer.put(jobs.mark_op([other.key], "named", "sent"))  # another rename, in flight
    journal.record([Change(first.key, named="done")])
    journal.record([Change(first.key, named="pending")])  # verify sends it back
    await journal.intend([first.key], "named")
    await journal.flush()
    writer.close()
    assert journal.state().devices[0].named == "sent"
    assert (await journal.current()).devices[0] == journal.state().devices[0]

"""The Particle Cloud client: every method against the local cloud, every error shape, retries.

Three kinds of test live here:

* exact error bodies from spec §0.3's table, served by :class:`httpx2.MockTransport`,
  and scripted retry sequences (status after status, or dropped connections);
* every client method against the emulator in-process (``httpx2.ASGITransport``);
* a smaller session against the emulator over a real socket (``serve_in_background``).

Retry waits never really happen: the client's ``asyncio.sleep`` and the rate
limiter's clock and sleep are replaced by :class:`FakeTime`, which records each
wait and moves a fake clock.
"""

from __future__ import annotations

import asyncio
import random
import types
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx2
import pytest

import trayline.particle.client as client_module
from trayline.core.ids import InvalidIdentifier
from trayline.particle.auth import AccessToken
from trayline.particle.client import (
    CallRecord,
    ParticleClient,
    RetryPolicy,
    SerialBudgetExhausted,
    api_url_from_env,
)
from trayline.particle.emulator import (
    EmulatorApp,
    EmulatorConfig,
    create_app,
    serve_in_background,
)
from trayline.particle.errors import (
    AuthError,
    BadRequest,
    CloudError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TransportError,
    error_message,
)
from trayline.particle.ratelimit import MemorySerialBudget, RateLimit, RateLimiter
from trayline.store.audit import StoreSerialBudget
from trayline.store.db import Store

TOKEN_VALUE = "5e1f0c0ffee5e1f0c0ffee5e1f0c0ffee5e1f0c0"
USER = "line@example.com"
PRODUCT_ID = 1234
SLUG = "my-product"
OTHER_PRODUCT = 999
UNKNOWN_ID = "e00fce68ffffffffffffffff"
DEVICE_ROUTE = "GET /v1/products/{product}/devices/{device_id}"

_real_sleep = asyncio.sleep


class FakeTime:
    """One fake clock for the client's retry sleeps and the rate limiter."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.slept: list[float] = []
        self.paused: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """The client's retry wait."""
        self.slept.append(seconds)
        self.now += seconds
        await _real_sleep(0)

    async def limiter_sleep(self, seconds: float) -> None:
        """The rate limiter's wait (a pause after a 429, or a full window)."""
        self.paused.append(seconds)
        self.now += seconds
        await _real_sleep(0)


class SpyLimiter(RateLimiter):
    def __init__(self, fake: FakeTime) -> None:
        super().__init__(RateLimit(10_000, 300), clock=fake.clock, sleep=fake.limiter_sleep)
        self.slow_downs: list[float | None] = []

    def slow_down(self, retry_after: float | None) -> None:
        self.slow_downs.append(retry_after)
        super().slow_down(retry_after)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[CallRecord] = []

    def record_call(self, call: CallRecord) -> None:
        self.calls.append(call)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """Replace the client's retry sleep (only the client's) with the fake clock."""
    clock = FakeTime()
    monkeypatch.setattr(client_module, "asyncio", types.SimpleNamespace(sleep=clock.sleep))
    return clock


FAST = RetryPolicy(max_attempts=4, base=0.001, cap=0.002, rate_limited_base=0.01)

# --------------------------------------------------------------------------- MockTransport

Step = tuple[int, Any] | tuple[int, Any, dict[str, str]] | Exception


def scripted(steps: Sequence[Step]) -> tuple[httpx2.MockTransport, list[httpx2.Request]]:
    """A transport answering each request with the next step (the last one repeats)."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        step = steps[min(len(seen), len(steps)) - 1]
        if isinstance(step, Exception):
            raise step
        status, body, *rest = step
        headers = rest[0] if rest else {}
        if isinstance(body, bytes):
            return httpx2.Response(status, content=body, headers=headers)
        return httpx2.Response(status, json=body, headers=headers)

    return httpx2.MockTransport(handler), seen


def mock_client(
    steps: Sequence[Step],
    fake: FakeTime,
    *,
    retry: RetryPolicy = FAST,
    observers: Sequence[Recorder] = (),
) -> tuple[ParticleClient, list[httpx2.Request], SpyLimiter]:
    transport, seen = scripted(steps)
    limiter = SpyLimiter(fake)
    client = ParticleClient(
        AccessToken(TOKEN_VALUE),
        base_url="http://cloud.test",
        transport=transport,
        retry=retry,
        limiter=limiter,
        observers=observers,
        rng=random.Random(3),
    )
    return client, seen, limiter


DEVICE_BODY = {"id": "E00FCE68AAAAAAAAAAAAAAAA", "name": "unit-1", "product_id": PRODUCT_ID}
OK: Step = (200, DEVICE_BODY)

# spec §0.3, row by row: (id, status, body, class, message)
ERROR_SHAPES: list[tuple[str, int, dict[str, Any], type[CloudError], str]] = [
    (
        "invalid_token-401",
        401,
        {"error": "invalid_token", "error_description": "The access token provided is invalid."},
        AuthError,
        "The access token provided is invalid.",
    ),
    (
        "invalid_grant-400",
        400,
        {"error": "invalid_grant", "error_description": "User credentials are invalid"},
        BadRequest,
        "User credentials are invalid",
    ),
    (
        "mfa_required-403",
        403,
        {"error": "mfa_required", "mfa_token": "0f1e2d3c-mfa"},
        PermissionDenied,
        "mfa_required",
    ),
    (
        "api-user-unauthorized-400",
        400,
        {
            "error": "unauthorized",
            "error_description": "API users are not allowed to call this endpoint",
        },
        PermissionDenied,
        "API users are not allowed to call this endpoint",
    ),
    (
        "api-user-unauthorized-403",
        403,
        {
            "error": "unauthorized",
            "error_description": "API users are not allowed to call this endpoint",
        },
        PermissionDenied,
        "API users are not allowed to call this endpoint",
    ),
    (
        "belongs-to-someone-else-403",
        403,
        {"errors": ["That belongs to someone else."]},
        PermissionDenied,
        "That belongs to someone else.",
    ),
    (
        "belongs-to-someone-else-ok-false-403",
        403,
        {"ok": False, "errors": ["That belongs to someone else."]},
        PermissionDenied,
        "That belongs to someone else.",
    ),
    (
        "permission-denied-info-403",
        403,
        {
            "error": "Permission Denied",
            "info": "I didn't recognize that device name or ID, try opening "
            "https://api.particle.io/v1/devices?access_token=…",
        },
        PermissionDenied,
        "Permission Denied: I didn't recognize that device name or ID",
    ),
    (
        "permission-denied-info-ok-false-403",
        403,
        {
            "ok": False,
            "error": "Permission Denied",
            "info": "I didn't recognize that device name or ID, try opening "
            "https://api.particle.io/v1/devices?access_token=…",
        },
        PermissionDenied,
        "Permission Denied: I didn't recognize that device name or ID",
    ),
    ("timed-out-408", 408, {"ok": False, "error": "timed out"}, BadRequest, "timed out"),
    (
        "unknown-variable-404",
        404,
        {"ok": False, "error": "Unknown Variable: sensor2"},
        NotFound,
        "Unknown Variable: sensor2",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [shape[1:] for shape in ERROR_SHAPES],
    ids=[shape[0] for shape in ERROR_SHAPES],
)
async def test_error_shapes(
    fake: FakeTime, status: int, body: dict[str, Any], cls: type[CloudError], message: str
) -> None:
    client, seen, limiter = mock_client([(status, body), OK], fake)
    async with client:
        with pytest.raises(CloudError) as info:
            await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
    error = info.value
    assert type(error) is cls
    assert error.message == message
    assert error_message(body, "fallback") == message
    assert error.status == status
    assert error.body == body
    assert error.route == DEVICE_ROUTE
    assert str(error) == f"HTTP {status}: {message} ({DEVICE_ROUTE})"
    assert "access_token" not in str(error)
    assert not error.retryable
    assert len(seen) == 1, "a 4xx is never retried"
    assert fake.slept == [] and limiter.slow_downs == []
    if isinstance(error, PermissionDenied):
        assert error.belongs_to_someone_else == ("belongs to someone else" in message)
        assert error.unknown_device == ("didn't recognize" in message)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"shortErrorDescription": "short", "error_description": "long", "error": "e"}, "short"),
        ({"error_description": "desc", "error": "e", "errors": ["x"]}, "desc"),
        ({"errors": [{"message": "a"}, "b"]}, "a; b"),
        ({"info": "just info, try opening https://x?access_token=…"}, "just info"),
        ({"ok": False}, "fallback"),
        ({"error": "", "errors": []}, "fallback"),
        (["not", "a", "dict"], "fallback"),
        (None, "fallback"),
    ],
)
def test_error_message_order(body: Any, expected: str) -> None:
    assert error_message(body, "fallback") == expected


async def test_error_without_json_body(fake: FakeTime) -> None:
    client, seen, _ = mock_client(
        [(502, b"<html>Bad Gateway</html>"), (500, b""), (418, b"")],
        fake,
        retry=RetryPolicy(max_attempts=2, base=0.001, cap=0.001),
    )
    async with client:
        with pytest.raises(ServerError) as info:
            await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
        assert info.value.message == "HTTP 500"
        assert info.value.body == {}
        with pytest.raises(BadRequest) as teapot:
            await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
        assert teapot.value.status == 418 and teapot.value.message == "HTTP 418"
    assert len(seen) == 3


async def test_non_json_error_body_is_quoted(fake: FakeTime) -> None:
    client, _, _ = mock_client([(503, b"<html>upstream down</html>")], fake)
    async with client:
        with pytest.raises(ServerError) as info:
            await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
    assert info.value.message == "<html>upstream down</html>"


# --------------------------------------------------------------------------- retries


async def test_server_errors_retried_then_succeed(fake: FakeTime) -> None:
    recorder = Recorder()
    client, seen, limiter = mock_client(
        [(500, {"ok": False, "error": "Internal Server Error"}), (502, {}), (503, {}), OK],
        fake,
        observers=[recorder],
    )
    async with client:
        device = await client.get_product_device(SLUG, "E00FCE68AAAAAAAAAAAAAAAA")
    assert device.id == "e00fce68aaaaaaaaaaaaaaaa"
    assert len(seen) == 4 and client.requests_sent == 4
    assert client.status_counts == {"500": 1, "502": 1, "503": 1, "200": 1}
    assert len(fake.slept) == 3
    assert all(0.0005 <= s <= 0.002 for s in fake.slept)
    assert limiter.slow_downs == []
    assert [c.attempt for c in recorder.calls] == [1, 2, 3, 4]
    assert [c.status for c in recorder.calls] == [500, 502, 503, 200]
    assert [c.error_kind for c in recorder.calls] == ["ServerError"] * 3 + [None]
    assert {c.path_template for c in recorder.calls} == {
        "/v1/products/{product}/devices/{device_id}"
    }
    # The same request each time, token only in the header.
    assert {str(r.url) for r in seen} == {
        "http://cloud.test/v1/products/my-product/devices/E00FCE68AAAAAAAAAAAAAAAA"
    }
    assert all(r.headers["authorization"] == f"Bearer {TOKEN_VALUE}" for r in seen)


@pytest.mark.parametrize(
    "failure",
    [
        httpx2.ConnectError("refused"),
        httpx2.ReadError("reset"),
        httpx2.RemoteProtocolError("Server disconnected without sending a response."),
        httpx2.ReadTimeout("slow"),
        ConnectionResetError("dropped"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_dropped_connections_retried_then_succeed(fake: FakeTime, failure: Exception) -> None:
    recorder = Recorder()
    client, seen, _ = mock_client([failure, failure, OK], fake, observers=[recorder])
    async with client:
        device = await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
    assert device.name == "unit-1"
    assert len(seen) == 3 and len(fake.slept) == 2
    assert [c.status for c in recorder.calls] == [None, None, 200]
    assert [c.error_kind for c in recorder.calls] == ["TransportError", "TransportError", None]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 422])
async def test_client_errors_never_retried(fake: FakeTime, status: int) -> None:
    client, seen, _ = mock_client([(status, {"ok": False, "error": "no"}), OK], fake)
    async with client:
        with pytest.raises(CloudError) as info:
            await client.update_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa", name="x")
    assert info.value.status == status and not info.value.retryable
    assert len(seen) == 1 and client.requests_sent == 1
    assert fake.slept == []


async def test_retry_after_seconds_honoured(fake: FakeTime) -> None:
    client, seen, limiter = mock_client(
        [(429, {"ok": False, "error": "Too many requests"}, {"Retry-After": "3"}), OK], fake
    )
    start = fake.now
    async with client:
        await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
    assert len(seen) == 2
    assert limiter.slow_downs == [3.0]
    assert limiter.throttled == 1
    assert fake.slept[0] >= 3.0
    assert fake.now - start >= 3.0
    assert client.status_counts == {"429": 1, "200": 1}


async def test_retry_after_http_date_honoured(fake: FakeTime) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    client, seen, limiter = mock_client([(429, {}, {"Retry-After": when}), OK], fake)
    async with client:
        await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
    assert len(seen) == 2
    assert limiter.slow_downs[0] is not None and 115 <= limiter.slow_downs[0] <= 120
    assert fake.slept[0] >= limiter.slow_downs[0]


@pytest.mark.parametrize("header", [None, "soon", ""])
async def test_429_without_usable_retry_after_backs_off(fake: FakeTime, header: str | None) -> None:
    policy = RetryPolicy(max_attempts=3, rate_limited_base=5.0, rate_limited_cap=300.0)
    headers = {} if header is None else {"Retry-After": header}
    client, seen, limiter = mock_client(
        [(429, {}, headers), (429, {}, headers), OK], fake, retry=policy
    )
    async with client:
        await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
    assert len(seen) == 3
    assert limiter.slow_downs == [None, None]
    assert 2.5 <= fake.slept[0] <= 5.0, "spec §9: wait before retrying a 429"
    assert 5.0 <= fake.slept[1] <= 10.0


async def test_max_attempts_for_server_errors(fake: FakeTime) -> None:
    policy = RetryPolicy(max_attempts=5, base=1.0, cap=4.0)
    client, seen, _ = mock_client(
        [(503, {"ok": False, "error": "Service Unavailable"})], fake, retry=policy
    )
    async with client:
        with pytest.raises(ServerError) as info:
            await client.get_product_device(SLUG, "e00fce68aaaaaaaaaaaaaaaa")
    assert info.value.message == "Service Unavailable"
    assert len(seen) == 5
    assert len(fake.slept) == 4
    for attempt, waited in enumerate(fake.slept, start=1):
        ceiling = min(4.0, 1.0 * 2 ** (attempt - 1))
        assert ceiling / 2 <= waited <= ceiling, "jittered exponential backoff, capped"


async def test_max_attempts_for_transport_errors(fake: FakeTime) -> None:
    client, seen, _ = mock_client([httpx2.ConnectError("refused")], fake)
    async with client:
        with pytest.raises(TransportError) as info:
            await client.list_groups(SLUG)
    assert len(seen) == FAST.max_attempts
    assert info.value.status is None
    assert info.value.route == "GET /v1/products/{product}/groups"
    assert "ConnectError" in str(info.value)


async def test_max_attempts_for_429(fake: FakeTime) -> None:
    client, seen, limiter = mock_client([(429, {}, {"Retry-After": "2"})], fake)
    async with client:
        with pytest.raises(RateLimited) as info:
            await client.list_groups(SLUG)
    assert info.value.retry_after == 2.0
    assert len(seen) == FAST.max_attempts
    assert limiter.slow_downs == [2.0] * FAST.max_attempts
    assert all(s >= 2.0 for s in fake.slept)


async def test_one_attempt_means_no_retry(fake: FakeTime) -> None:
    client, seen, _ = mock_client([(500, {}), OK], fake, retry=RetryPolicy(max_attempts=1))
    async with client:
        with pytest.raises(ServerError):
            await client.list_groups(SLUG)
    assert len(seen) == 1 and fake.slept == []


# --------------------------------------------------------------------------- the local cloud


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(seed=11)


@pytest.fixture
def app(config: EmulatorConfig) -> EmulatorApp:
    app = create_app(config)
    app.cloud.add_product(PRODUCT_ID, SLUG, platform_id=13)
    app.cloud.add_product(OTHER_PRODUCT, "other-product", platform_id=13)
    app.cloud.add_token(USER, token=TOKEN_VALUE)
    return app


def cloud_client(
    app: EmulatorApp, token: str = TOKEN_VALUE, *, retry: RetryPolicy = FAST, **kw: Any
) -> ParticleClient:
    return ParticleClient(
        AccessToken(token),
        base_url="http://cloud",
        transport=httpx2.ASGITransport(app),
        retry=retry,
        rng=random.Random(5),
        **kw,
    )


@pytest.fixture
async def cloud(app: EmulatorApp) -> Any:
    async with cloud_client(app) as client:
        yield client


def product_members(app: EmulatorApp) -> set[str]:
    return set(app.cloud.product_devices[PRODUCT_ID])


# ---- errors the emulator produces


async def test_bad_token_is_auth_error(app: EmulatorApp) -> None:
    async with cloud_client(app, "0" * 40) as client:
        with pytest.raises(AuthError) as info:
            await client.list_groups(SLUG)
    assert info.value.status == 401
    assert info.value.message == "The access token provided is invalid."
    assert client.requests_sent == 1


async def test_missing_scope_is_permission_denied(app: EmulatorApp) -> None:
    token = app.cloud.add_token("robot@example.com", scopes=["devices:get"])
    async with cloud_client(app, token) as client:
        with pytest.raises(PermissionDenied) as info:
            await client.list_product_devices(SLUG)
    assert info.value.message == (
        "Permission Denied: This access token does not have the devices:list scope"
    )
    assert not info.value.unknown_device and client.requests_sent == 1


async def test_claim_someone_elses_device(app: EmulatorApp, cloud: ParticleClient) -> None:
    (device,) = app.cloud.make_devices("BRN404", 1, owner="someone@else.com")
    with pytest.raises(PermissionDenied) as info:
        await cloud.claim_device(device.id)
    assert info.value.belongs_to_someone_else
    assert info.value.message == "That belongs to someone else."
    assert info.value.status == 403
    assert cloud.requests_sent == 1
    transfer = await cloud.claim_device(device.id, request_transfer=True)
    assert transfer["ok"] is True and transfer["transfer_id"]
    assert app.cloud.devices[device.id].owner == "someone@else.com"


@pytest.mark.parametrize("status", [400, 403])
async def test_api_user_may_not_claim(status: int) -> None:
    app = create_app(EmulatorConfig(seed=2, api_user_forbidden_status=status))
    token = app.cloud.add_token("robot+api@example.com", api_user=True)
    (device,) = app.cloud.make_devices("BRN404", 1)
    async with cloud_client(app, token) as client:
        with pytest.raises(PermissionDenied) as info:
            await client.claim_device(device.id)
    assert info.value.status == status
    assert info.value.message == "API users are not allowed to call this endpoint"
    assert not info.value.belongs_to_someone_else
    assert client.requests_sent == 1


async def test_unknown_device_rename(cloud: ParticleClient) -> None:
    with pytest.raises(PermissionDenied) as info:
        await cloud.update_device(SLUG, UNKNOWN_ID, name="unit-9")
    assert info.value.unknown_device
    assert info.value.message == "Permission Denied: I didn't recognize that device name or ID"
    assert "access_token" not in str(info.value)
    assert cloud.requests_sent == 1


async def test_duplicate_group(cloud: ParticleClient) -> None:
    await cloud.create_group(SLUG, "line-a")
    with pytest.raises(BadRequest) as info:
        await cloud.create_group(SLUG, "line-a")
    assert info.value.duplicate
    assert info.value.message == "Group already exists"
    with pytest.raises(BadRequest) as invalid:
        await cloud.create_group(SLUG, "Line A")
    assert not invalid.value.duplicate
    assert cloud.requests_sent == 3


@pytest.mark.parametrize(
    ("status", "wording"),
    [(400, "Name has already been taken"), (409, "Group already exists"), (409, "Conflict")],
)
async def test_duplicate_group_other_answers(status: int, wording: str) -> None:
    """Spec §5.2: the duplicate answer is UNCONFIRMED (400, possibly 409; text assumed)."""
    config = EmulatorConfig(duplicate_group_status=status, duplicate_group_error=wording)
    app = create_app(config)
    app.cloud.add_product(PRODUCT_ID, SLUG)
    app.cloud.add_token(USER, token=TOKEN_VALUE)
    async with cloud_client(app) as client:
        await client.create_group(SLUG, "line-a")
        with pytest.raises(BadRequest) as info:
            await client.create_group(SLUG, "line-a")
    assert info.value.status == status and info.value.message == wording
    assert info.value.duplicate
    assert client.requests_sent == 2


async def test_unknown_product(cloud: ParticleClient) -> None:
    with pytest.raises(NotFound) as info:
        await cloud.list_product_devices("no-such-product")
    assert info.value.message == "Product no-such-product not found"
    with pytest.raises(NotFound):
        await cloud.import_devices("4321", [UNKNOWN_ID])
    assert cloud.requests_sent == 2


async def test_emulator_429_is_rate_limited(app: EmulatorApp) -> None:
    app.apply_faults(rate_limit=(3, 60.0))
    limiter = SpyLimiter(FakeTime())
    async with cloud_client(app, retry=RetryPolicy(max_attempts=1), limiter=limiter) as client:
        for _ in range(3):
            await client.list_groups(SLUG)
        with pytest.raises(RateLimited) as info:
            await client.list_groups(SLUG)
    assert info.value.status == 429
    assert info.value.message == "Too many requests"
    assert info.value.retry_after is not None and 59 <= info.value.retry_after <= 60
    assert limiter.slow_downs == [info.value.retry_after]


async def test_emulator_429_then_window_reopens(app: EmulatorApp, fake: FakeTime) -> None:
    """The emulator's window and the client's waits run on one fake clock."""
    app.clock = fake.clock
    app.apply_faults(rate_limit=(2, 10.0))
    limiter = SpyLimiter(fake)
    async with cloud_client(app, limiter=limiter) as client:
        for _ in range(5):
            await client.list_groups(SLUG)
    assert limiter.slow_downs and all(w is not None and w >= 1 for w in limiter.slow_downs)
    assert client.status_counts["200"] == 5
    assert app.counters.by_status["429"] == len(limiter.slow_downs)


async def test_emulator_faults_retried(app: EmulatorApp) -> None:
    """Seeded 5xx and dropped connections from the local cloud are retried away."""
    app.apply_faults(error_rate=0.3, drop_rate=0.2)
    (device,) = app.cloud.make_devices("BRN404", 1, product_id=PRODUCT_ID)
    async with cloud_client(app, retry=RetryPolicy(max_attempts=12, base=0.0005, cap=0.001)) as c:
        for _ in range(25):
            found = await c.get_product_device(SLUG, device.id)
            assert found.id == device.id
    assert app.counters.dropped > 0
    server_errors = sum(n for s, n in c.status_counts.items() if s.startswith("5"))
    assert server_errors > 0
    assert c.status_counts["200"] == 25
    assert c.requests_sent == 25 + server_errors + app.counters.dropped


# ---- every method, in-process


async def test_lookup_serial(app: EmulatorApp, cloud: ParticleClient) -> None:
    (device,) = app.cloud.make_devices("BRN404", 1)
    result = await cloud.lookup_serial(device.serial_number)
    assert result.serial_number == device.serial_number
    assert result.device_id == device.id
    assert result.iccid == device.iccid
    assert result.platform_id == 13
    with pytest.raises(NotFound) as info:
        await cloud.lookup_serial("P000AAA00000000")
    assert "not found" in info.value.message
    assert isinstance(cloud.serial_budget, MemorySerialBudget)
    used = cloud.serial_budget.used(
        AccessToken(TOKEN_VALUE).fingerprint, datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert len(used) == 2, "an unknown serial still spends the budget"


async def test_lookup_serial_legacy_field() -> None:
    app = create_app(EmulatorConfig(seed=4, legacy_serial_field=True))
    app.cloud.add_token(USER, token=TOKEN_VALUE)
    (device,) = app.cloud.make_devices("BRN404", 1)
    async with cloud_client(app) as client:
        result = await client.lookup_serial(device.serial_number)
    assert result.device_id == device.id
    assert result.iccid == device.iccid


async def test_serial_budget_persists_in_store(app: EmulatorApp, store: Store) -> None:
    devices = app.cloud.make_devices("BRN404", 3)
    async with cloud_client(app, serial_budget=StoreSerialBudget(store)) as client:
        for i in range(50):
            found = await client.lookup_serial(devices[i % 3].serial_number)
            assert found.device_id == devices[i % 3].id
        with pytest.raises(SerialBudgetExhausted) as info:
            await client.lookup_serial(devices[0].serial_number)
        assert client.requests_sent == 50, "the 51st lookup is refused before it is sent"
    now = datetime.now(UTC)
    assert now + timedelta(minutes=59) <= info.value.next_at <= now + timedelta(hours=1)
    assert "Import by serial number instead" in str(info.value)
    # A new client (a restart) with the same store and token still may not look up.
    async with cloud_client(app, serial_budget=StoreSerialBudget(store)) as restarted:
        with pytest.raises(SerialBudgetExhausted):
            await restarted.lookup_serial(devices[1].serial_number)
        assert restarted.requests_sent == 0
    # The budget is per account: another user's token has its own.
    other = app.cloud.add_token("other@example.com")
    async with cloud_client(app, other, serial_budget=StoreSerialBudget(store)) as client2:
        found = await client2.lookup_serial(devices[2].serial_number)
    assert found.device_id == devices[2].id


@pytest.fixture
def import_set(app: EmulatorApp) -> dict[str, Any]:
    fresh = app.cloud.make_devices("BRN404", 5)
    (existing,) = app.cloud.make_devices("BRN404", 1, product_id=PRODUCT_ID)
    (elsewhere,) = app.cloud.make_devices("BRN404", 1, product_id=OTHER_PRODUCT)
    (wrong_platform,) = app.cloud.make_devices("B404", 1)
    (protected,) = app.cloud.make_devices("BRN404", 1, protected=True)
    updated = [
        fresh[0].id,
        fresh[1].serial_number,
        fresh[2].imei,
        fresh[3].iccid,
        fresh[4].id.upper(),
    ]
    return {
        "fresh": fresh,
        "identifiers": [
            *updated,
            existing.id,
            elsewhere.id,
            wrong_platform.id,
            protected.id,
            UNKNOWN_ID,
        ],
        "updated": updated,
        "existing": [existing.id],
        "elsewhere": [elsewhere.id],
        "invalid": [elsewhere.id, wrong_platform.id, UNKNOWN_ID],
        "protected": [protected.id],
    }


@pytest.mark.parametrize("how", ["file", "ids", "id"])
async def test_import_devices(
    app: EmulatorApp, cloud: ParticleClient, import_set: dict[str, Any], how: str
) -> None:
    identifiers: list[str] = import_set["identifiers"]
    if how == "id":
        results = [await cloud.import_devices(SLUG, [i], how="id") for i in identifiers]
        updated = [i for r in results for i in r.updated_ids]
        existing = [i for r in results for i in r.existing_ids]
        invalid = [i for r in results for i in r.invalid_ids]
        protected = [i for r in results for i in r.protected_ids]
        nonmember = [i for r in results for i in r.nonmember_ids]
        assert sum(r.updated for r in results) == 5
    else:
        result = await cloud.import_devices(SLUG, identifiers, how=how)
        updated, existing = list(result.updated_ids), list(result.existing_ids)
        invalid, protected = list(result.invalid_ids), list(result.protected_ids)
        nonmember = list(result.nonmember_ids)
        assert result.updated == 5
        assert cloud.requests_sent == 1
    assert updated == import_set["updated"], "identifiers echoed as sent"
    assert existing == import_set["existing"]
    assert invalid == import_set["invalid"]
    assert protected == import_set["protected"]
    assert nonmember == []
    assert {d.id for d in import_set["fresh"]} <= product_members(app)
    for device in import_set["fresh"]:
        assert app.cloud.sims[device.iccid].status == "active"


async def test_import_other_product_bucket() -> None:
    app = create_app(EmulatorConfig(seed=11, other_product_bucket="nonmemberDeviceIds"))
    app.cloud.add_product(PRODUCT_ID, SLUG, platform_id=13)
    app.cloud.add_product(OTHER_PRODUCT, "other-product", platform_id=13)
    app.cloud.add_token(USER, token=TOKEN_VALUE)
    (elsewhere,) = app.cloud.make_devices("BRN404", 1, product_id=OTHER_PRODUCT)
    async with cloud_client(app) as client:
        result = await client.import_devices(SLUG, [elsewhere.id], how="ids")
    assert result.nonmember_ids == (elsewhere.id,)
    assert result.invalid_ids == () and result.updated == 0


async def test_import_with_claim_user_and_options(app: EmulatorApp, cloud: ParticleClient) -> None:
    devices = app.cloud.make_devices("BRN404", 2)
    result = await cloud.import_devices(
        SLUG, [d.id for d in devices], how="file", import_sims=False, claim_user="cm@example.com"
    )
    assert result.updated == 2
    assert all(app.cloud.devices[d.id].owner == "cm@example.com" for d in devices)
    with pytest.raises(ValueError, match="exactly one"):
        await cloud.import_devices(SLUG, [d.id for d in devices], how="id")
    with pytest.raises(ValueError, match="unknown import body"):
        await cloud.import_devices(SLUG, [devices[0].id], how="csv")
    assert cloud.requests_sent == 1


async def test_sims(app: EmulatorApp, cloud: ParticleClient) -> None:
    devices = app.cloud.make_devices("BRN404", 3)
    iccids = [d.iccid for d in devices]
    await cloud.import_sims(SLUG, iccids)
    page = await cloud.list_sims(SLUG)
    assert {s.iccid for s in page.sims} == set(iccids)
    assert all(s.status == "active" and s.product_id == PRODUCT_ID for s in page.sims)
    assert page.total_pages == 1
    one = await cloud.list_sims(SLUG, iccid=iccids[1])
    assert [s.iccid for s in one.sims] == [iccids[1]]
    by_device = await cloud.list_sims(SLUG, device_id=devices[2].id)
    assert [s.last_device_id for s in by_device.sims] == [devices[2].id]
    paged = await cloud.list_sims(SLUG, per_page=2, page=2)
    assert paged.total_pages == 2 and len(paged.sims) == 1
    sim = await cloud.get_sim(iccids[0])
    assert sim.iccid == iccids[0] and sim.status == "active"
    assert sim.last_device_id == devices[0].id
    assert (await cloud.get_sim(iccids[0], SLUG)).iccid == iccids[0]
    with pytest.raises(NotFound):
        await cloud.get_sim("89014103211118510720", SLUG)
    mine = await cloud.list_sims()
    assert mine.total_pages == 1
    assert {d.id for d in devices} <= product_members(app), "embedded SIMs bring their devices"


async def test_groups(app: EmulatorApp, cloud: ParticleClient) -> None:
    group = await cloud.create_group(SLUG, "line-a", description="Line A", color="#ff0000")
    assert (group.name, group.description, group.color) == ("line-a", "Line A", "#ff0000")
    await cloud.create_group(SLUG, "line-b")
    await cloud.create_group(SLUG, "tray-7")
    assert {g.name for g in await cloud.list_groups(SLUG)} == {"line-a", "line-b", "tray-7"}
    assert {g.name for g in await cloud.list_groups(SLUG, name="line")} == {"line-a", "line-b"}
    got = await cloud.get_group(SLUG, "line-a")
    assert got.name == "line-a" and got.description == "Line A" and got.device_count == 0
    with pytest.raises(NotFound):
        await cloud.get_group(SLUG, "nope")

    devices = app.cloud.make_devices("BRN404", 3, product_id=PRODUCT_ID)
    ids = [d.id for d in devices]
    await cloud.update_device_groups(SLUG, ids, add=["line-a", "tray-7", "brand-new"])
    for device_id in ids:
        assert (await cloud.get_product_device(SLUG, device_id)).groups == (
            "line-a",
            "tray-7",
            "brand-new",
        )
    assert (await cloud.get_group(SLUG, "line-a")).device_count == 3
    await cloud.update_device_groups(SLUG, ids[:2], remove=["tray-7"])
    assert (await cloud.get_product_device(SLUG, ids[0])).groups == ("line-a", "brand-new")
    assert (await cloud.get_product_device(SLUG, ids[2])).groups == (
        "line-a",
        "tray-7",
        "brand-new",
    )
    in_tray = await cloud.list_product_devices(SLUG, groups=["tray-7"])
    assert [d.id for d in in_tray.devices] == [ids[2]]


async def test_update_device(app: EmulatorApp, cloud: ParticleClient) -> None:
    (device,) = app.cloud.make_devices("BRN404", 1, product_id=PRODUCT_ID)
    update = await cloud.update_device(
        SLUG,
        device.id.upper(),
        name="unit-1",
        notes="tray 7, slot 3",
        development=True,
        groups=["line-a"],
        desired_firmware_version=7,
    )
    assert update.id == device.id
    assert update.updated_at
    assert update.fields == {
        "name": "unit-1",
        "notes": "tray 7, slot 3",
        "development": True,
        "groups": ["line-a"],
        "desired_firmware_version": 7,
    }
    stored = app.cloud.devices[device.id]
    assert (stored.name, stored.development, stored.groups) == ("unit-1", True, ["line-a"])
    unlocked = await cloud.update_device(SLUG, device.id, unlock_firmware=True)
    assert unlocked.fields == {"desired_firmware_version": None}
    assert app.cloud.devices[device.id].desired_firmware_version is None
    with pytest.raises(ValueError, match="at least one field"):
        await cloud.update_device(SLUG, device.id)
    assert cloud.requests_sent == 2


async def test_claim(app: EmulatorApp, cloud: ParticleClient) -> None:
    (device,) = app.cloud.make_devices("BRN404", 1, product_id=PRODUCT_ID)
    body = await cloud.claim_device(device.id.upper())
    assert body["ok"] is True and body["id"] == device.id
    assert app.cloud.devices[device.id].owner == USER
    assert (await cloud.get_product_device(SLUG, device.id)).owner == USER
    again = await cloud.claim_device(device.id)
    assert again["ok"] is True, "claiming your own device again is fine"
    with pytest.raises(PermissionDenied) as info:
        await cloud.claim_device(UNKNOWN_ID)
    assert info.value.unknown_device


async def test_read_product_devices(app: EmulatorApp, cloud: ParticleClient) -> None:
    devices = app.cloud.make_devices("BRN404", 5, product_id=PRODUCT_ID)
    for n, device in enumerate(devices):
        await cloud.update_device(SLUG, device.id, name=f"unit-{5 - n}")
    one = await cloud.get_product_device(SLUG, devices[0].id)
    assert (one.id, one.name, one.serial_number, one.iccid, one.imei) == (
        devices[0].id,
        "unit-5",
        devices[0].serial_number,
        devices[0].iccid,
        devices[0].imei,
    )
    assert one.platform_id == 13 and one.product_id == PRODUCT_ID
    assert "mobile_secret" not in one.raw

    everything = await cloud.list_product_devices(SLUG)
    assert {d.id for d in everything.devices} == {d.id for d in devices}
    assert everything.total_pages == 1

    by_serial = await cloud.list_product_devices(SLUG, serial_number=devices[3].serial_number)
    assert [d.id for d in by_serial.devices] == [devices[3].id]
    partial = await cloud.list_product_devices(SLUG, serial_number=devices[3].serial_number[:4])
    assert devices[3].id in {d.id for d in partial.devices}
    by_id = await cloud.list_product_devices(SLUG, device_id=devices[1].id)
    assert [d.id for d in by_id.devices] == [devices[1].id]
    by_name = await cloud.list_product_devices(SLUG, device_name="unit-2")
    assert [d.name for d in by_name.devices] == ["unit-2"]

    sorted_desc = await cloud.list_product_devices(SLUG, sort_attr="deviceName", sort_dir="desc")
    assert [d.name for d in sorted_desc.devices] == [f"unit-{n}" for n in (5, 4, 3, 2, 1)]
    page1 = await cloud.list_product_devices(SLUG, sort_attr="deviceName", per_page=2)
    page3 = await cloud.list_product_devices(SLUG, sort_attr="deviceName", per_page=2, page=3)
    assert page1.total_pages == 3 and [d.name for d in page1.devices] == ["unit-1", "unit-2"]
    assert [d.name for d in page3.devices] == ["unit-5"]

    before = cloud.requests_sent
    walked = [d.id async for d in cloud.iter_product_devices(SLUG, per_page=2)]
    assert sorted(walked) == sorted(d.id for d in devices) and len(walked) == 5
    assert cloud.requests_sent - before == 3, "one request per page"

    await cloud.update_device_groups(SLUG, [devices[0].id, devices[4].id], add=["line-a"])
    grouped = [d.id async for d in cloud.iter_product_devices(SLUG, groups=["line-a"], per_page=1)]
    assert sorted(grouped) == sorted([devices[0].id, devices[4].id])
    empty = [d async for d in cloud.iter_product_devices(SLUG, groups=["nobody-here"])]
    assert empty == []


async def test_remove_device(app: EmulatorApp, cloud: ParticleClient) -> None:
    devices = app.cloud.make_devices("BRN404", 2, product_id=PRODUCT_ID)
    await cloud.claim_device(devices[0].id)
    await cloud.remove_device(SLUG, devices[0].id)
    assert devices[0].id not in product_members(app)
    assert app.cloud.devices[devices[0].id].owner is None
    with pytest.raises(PermissionDenied) as info:
        await cloud.get_product_device(SLUG, devices[0].id)
    assert info.value.unknown_device
    with pytest.raises(PermissionDenied):
        await cloud.remove_device(SLUG, devices[0].id)
    listed = await cloud.list_product_devices(SLUG)
    assert [d.id for d in listed.devices] == [devices[1].id]


async def test_paths_are_quoted(fake: FakeTime) -> None:
    client, seen, _ = mock_client([(200, {"group": {"name": "x"}})], fake)
    async with client:
        await client.get_group("my product/1", "a/b?c")
    assert seen[0].url.raw_path == b"/v1/products/my%20product%2F1/groups/a%2Fb%3Fc"


def test_api_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARTICLE_API_URL", raising=False)
    assert api_url_from_env() == "https://api.particle.io"
    monkeypatch.setenv("PARTICLE_API_URL", "http://127.0.0.1:8080/")
    assert api_url_from_env() == "http://127.0.0.1:8080"
    assert api_url_from_env("http://cloud/") == "http://cloud"


# --------------------------------------------------------------------------- over a real socket


@pytest.fixture
def served(app: EmulatorApp) -> Iterator[str]:
    with serve_in_background(app) as url:
        yield url


def socket_client(
    url: str, token: str = TOKEN_VALUE, *, retry: RetryPolicy = FAST, **kw: Any
) -> ParticleClient:
    return ParticleClient(AccessToken(token), base_url=url, retry=retry, rng=random.Random(8), **kw)


async def test_socket_session(app: EmulatorApp, served: str) -> None:
    devices = app.cloud.make_devices("BRN404", 4)
    (taken,) = app.cloud.make_devices("BRN404", 1, owner="someone@else.com")
    async with socket_client(served) as cloud:
        result = await cloud.import_devices(SLUG, [d.serial_number for d in devices])
        assert result.updated == 4
        await cloud.create_group(SLUG, "line-a")
        await cloud.update_device_groups(SLUG, [d.id for d in devices], add=["line-a"])
        renamed = await cloud.update_device(SLUG, devices[0].id, name="unit-1")
        assert renamed.fields == {"name": "unit-1"}
        walked = [
            d.id async for d in cloud.iter_product_devices(SLUG, groups=["line-a"], per_page=3)
        ]
        assert sorted(walked) == sorted(d.id for d in devices)
        assert (await cloud.lookup_serial(devices[1].serial_number)).device_id == devices[1].id
        assert (await cloud.get_sim(devices[2].iccid, SLUG)).status == "active"
        with pytest.raises(PermissionDenied) as info:
            await cloud.claim_device(taken.id)
        assert info.value.belongs_to_someone_else
        with pytest.raises(NotFound):
            await cloud.get_group(SLUG, "nope")
        await cloud.remove_device(SLUG, devices[3].id)
    async with socket_client(served, "f" * 40) as stranger:
        with pytest.raises(AuthError):
            await stranger.list_groups(SLUG)
        assert stranger.requests_sent == 1


async def test_socket_faults_retried(app: EmulatorApp, served: str) -> None:
    """Dropped connections on a real socket (uvicorn aborts them) and 5xx are retried."""
    async with httpx2.AsyncClient(base_url=served) as admin:
        answer = await admin.post("/_emulator/faults", json={"drop_rate": 0.3, "error_rate": 0.3})
        assert answer.status_code == 200
    (device,) = app.cloud.make_devices("BRN404", 1, product_id=PRODUCT_ID)
    async with socket_client(
        served, retry=RetryPolicy(max_attempts=15, base=0.001, cap=0.002)
    ) as c:
        for _ in range(15):
            assert (await c.get_product_device(SLUG, device.id)).id == device.id
    assert app.counters.dropped > 0
    assert any(s.startswith("5") for s in c.status_counts)


async def test_socket_connection_refused(fake: FakeTime) -> None:
    with serve_in_background(create_app()) as url:
        pass  # the server is gone: its port now refuses connections
    async with socket_client(url) as cloud:
        with pytest.raises(TransportError) as info:
            await cloud.list_groups(SLUG)
    assert cloud.requests_sent == FAST.max_attempts
    assert info.value.status is None


async def test_socket_429(app: EmulatorApp, served: str) -> None:
    async with httpx2.AsyncClient(base_url=served) as admin:
        await admin.post("/_emulator/faults", json={"rate_limit": "2/30"})
    async with socket_client(served, retry=RetryPolicy(max_attempts=1)) as cloud:
        await cloud.list_groups(SLUG)
        await cloud.list_groups(SLUG)
        with pytest.raises(RateLimited) as info:
            await cloud.list_groups(SLUG)
    assert info.value.retry_after is not None and 29 <= info.value.retry_after <= 30
    assert cloud.limiter.throttled == 1


async def test_lookup_of_a_malformed_serial_spends_nothing() -> None:
    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(200, json={})

    budget = MemorySerialBudget()
    client = ParticleClient(
        AccessToken("t" * 40),
        base_url="http://cloud.test",
        transport=httpx2.MockTransport(handler),
        serial_budget=budget,
    )
    async with client:
        with pytest.raises(InvalidIdentifier):
            await client.lookup_serial("P028AB1234567XY-TOO-LONG")
    assert sent == []
    assert budget.used(AccessToken("t" * 40).fingerprint, datetime.min.replace(tzinfo=UTC)) == []


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "url",
    ["ftp://api.particle.io", "api.particle.io", "http://", "http://127.0.0.1:70000",
     "https://user:pw@api.particle.io", "https://api.particle.io/?x=1", "file:///etc/passwd"],
)  # fmt: skip
def test_api_url_must_be_http_with_a_host(url: str) -> None:
    from trayline.particle.client import validate_api_url
    from trayline.particle.errors import InvalidApiUrl

    with pytest.raises(InvalidApiUrl):
        validate_api_url(url)


def test_api_url_accepted_forms() -> None:
    from trayline.particle.client import validate_api_url

    assert validate_api_url("https://api.particle.io/") == "https://api.particle.io"
    assert validate_api_url("http://127.0.0.1:8787") == "http://127.0.0.1:8787"


@pytest.mark.parametrize("status", [200, 404, 405])
async def test_an_html_answer_is_not_the_api_and_is_not_retried(status: int) -> None:
    from trayline.particle.errors import NotAnApi

    calls = []

    def html(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(status, text="<html><body>login</body></html>",
                              headers={"Content-Type": "text/html"})  # fmt: skip

    client = ParticleClient(AccessToken(TOKEN_VALUE), base_url="http://router.test",
                            transport=httpx2.MockTransport(html), retry=FAST)  # fmt: skip
    async with client:
        with pytest.raises(NotAnApi) as info:
            await client.whoami()
    assert len(calls) == 1
    assert "HTML" in str(info.value) and "PARTICLE_API_URL" in str(info.value)


async def test_whoami_names_the_account() -> None:
    def user(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/user"
        return httpx2.Response(200, json={"username": "maker@example.com"})

    client = ParticleClient(AccessToken(TOKEN_VALUE), base_url="http://cloud.test",
                            transport=httpx2.MockTransport(user))  # fmt: skip
    async with client:
        assert await client.whoami() == "maker@example.com"


async def test_serial_lookup_429_says_when_the_budget_refills_at_once() -> None:
    from datetime import UTC, datetime

    from trayline.particle.client import SerialBudgetExhausted

    calls = []

    def spent(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(429, json={"error": "Too Many Requests"},
                              headers={"Retry-After": "1200"})  # fmt: skip

    client = ParticleClient(AccessToken(TOKEN_VALUE), base_url="http://cloud.test",
                            transport=httpx2.MockTransport(spent), retry=FAST)  # fmt: skip
    async with client:
        with pytest.raises(SerialBudgetExhausted) as info:
            await client.lookup_serial("P028AB1234567XY")
    assert len(calls) == 1, "no waiting, no retry"
    left = (info.value.next_at - datetime.now(UTC)).total_seconds()
    assert 1100 < left <= 1200


@pytest.mark.parametrize(
    "value", ["tökén" + "a" * 30, "a" * 20 + "\u00a0" + "b" * 10, "ab\u200bcd"]
)
def test_a_token_of_non_ascii_characters_is_refused_without_quoting_it(value: str) -> None:
    from trayline.particle.auth import TokenError

    with pytest.raises(TokenError) as info:
        AccessToken(value)
    assert value not in str(info.value)

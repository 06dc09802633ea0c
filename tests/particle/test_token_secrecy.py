"""Nothing logs a token.

A whole client session with a known token runs against the local cloud (in-process
and over a real socket) with every logger at DEBUG and the audit log writing to the
store. It succeeds, is refused (403), misses (404), is rate limited (429), meets
server errors and dropped connections, and retries. Afterwards the token must be
nowhere: not in the captured logs, not in any column of any table of the store, not
in ``str``/``repr``/``.body``/traceback of any raised exception, not in the
``repr`` of the token itself. Token files must be private and never echo the token.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import traceback
import types
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import MetaData, select

import trayline.particle.client as client_module
from trayline.particle.auth import AccessToken, TokenError, token_from_env, token_from_file
from trayline.particle.client import ParticleClient, RetryPolicy
from trayline.particle.emulator import EmulatorApp, EmulatorConfig, create_app, serve_in_background
from trayline.particle.errors import (
    AuthError,
    BadRequest,
    CloudError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TransportError,
)
from trayline.particle.ratelimit import RateLimit, RateLimiter
from trayline.store.audit import StoreAudit, StoreSerialBudget
from trayline.store.db import Store

SECRET = "7a3c9e1b5d0f2468ace13579bdf0246813579bdf"
OTHER_SECRET = "feedfacefeedfacefeedfacefeedfacefeedface"
USER = "line@example.com"
SLUG = "secret-product"
PRODUCT_ID = 4242
LOGGERS = ("", "httpx2", "httpcore", "trayline", "asyncio", "uvicorn", "sqlalchemy", "alembic")


def leaks(text: str, secret: str = SECRET) -> bool:
    """The whole token, or either half of it, in ``text``."""
    half = len(secret) // 2
    return secret in text or secret[:half] in text or secret[half:] in text


def exception_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [repr(a) for a in exc.args]
    if isinstance(exc, CloudError):
        texts += [repr(exc.body), str(exc.body), exc.message, exc.route]
    return texts


class NoWait:
    """Retry waits and rate-limiter pauses that take no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    return caplog


@pytest.fixture
def app() -> EmulatorApp:
    app = create_app(EmulatorConfig(seed=21))
    app.cloud.add_product(PRODUCT_ID, SLUG, platform_id=13)
    app.cloud.add_product(PRODUCT_ID + 1, "someone-elses", platform_id=13)
    app.cloud.add_token(USER, token=SECRET)
    app.cloud.add_token("other@example.com", token=OTHER_SECRET)
    return app


@contextmanager
def base_url_for(
    app: EmulatorApp, kind: str
) -> Iterator[tuple[str, httpx2.AsyncBaseTransport | None]]:
    if kind == "in-process":
        yield "http://cloud", httpx2.ASGITransport(app)
    else:
        with serve_in_background(app) as url:
            yield url, None


async def session(
    app: EmulatorApp, url: str, transport: httpx2.AsyncBaseTransport | None, store: Store
) -> tuple[list[BaseException], ParticleClient]:
    """A provisioning-like session that meets every kind of answer; returns what it raised."""
    raised: list[BaseException] = []
    wait = NoWait()
    audit = StoreAudit(store, batch=5)

    def client(token: str, attempts: int = 3) -> ParticleClient:
        return ParticleClient(
            AccessToken(token),
            base_url=url,
            transport=transport,
            retry=RetryPolicy(max_attempts=attempts, base=0.001, cap=0.002),
            limiter=RateLimiter(RateLimit(10_000, 300), clock=wait.clock, sleep=wait.sleep),
            observers=[audit],
            serial_budget=StoreSerialBudget(store),
            rng=random.Random(1),
        )

    @asynccontextmanager
    async def expect(cls: type[CloudError]) -> AsyncIterator[None]:
        try:
            yield
        except CloudError as exc:
            assert isinstance(exc, cls), repr(exc)
            raised.append(exc)
        else:
            raise AssertionError(f"expected {cls.__name__}")

    devices = app.cloud.make_devices("BRN404", 4)
    (taken,) = app.cloud.make_devices("BRN404", 1, owner="someone@else.com")
    async with client(SECRET) as cloud:
        # successes
        result = await cloud.import_devices(SLUG, [d.serial_number for d in devices])
        assert result.updated == 4
        await cloud.create_group(SLUG, "line-a")
        await cloud.update_device_groups(SLUG, [d.id for d in devices], add=["line-a"])
        await cloud.update_device(SLUG, devices[0].id, name="unit-1")
        await cloud.lookup_serial(devices[1].serial_number)
        await cloud.get_product_device(SLUG, devices[1].id)
        await cloud.list_sims(SLUG)
        assert [d.id async for d in cloud.iter_product_devices(SLUG, per_page=2)]
        # 403s
        async with expect(PermissionDenied):
            await cloud.claim_device(taken.id)
        async with expect(PermissionDenied):
            await cloud.update_device(SLUG, "e00fce68ffffffffffffffff", name="x")
        # 404s and a 400
        async with expect(NotFound):
            await cloud.list_product_devices("no-such-product")
        async with expect(NotFound):
            await cloud.get_group(SLUG, "missing")
        async with expect(NotFound):
            await cloud.lookup_serial("P000AAA00000000")
        async with expect(BadRequest):
            await cloud.create_group(SLUG, "line-a")
        # 5xx, retried and then given up
        app.apply_faults(error_rate=1.0)
        async with expect(ServerError):
            await cloud.list_groups(SLUG)
        # dropped connections, retried and then given up
        app.apply_faults(error_rate=0.0, drop_rate=1.0)
        async with expect(TransportError):
            await cloud.get_product_device(SLUG, devices[2].id)
        # a few faults that retries absorb
        app.apply_faults(error_rate=0.3, drop_rate=0.2)
        for _ in range(6):
            await cloud.get_product_device(SLUG, devices[3].id)
        app.apply_faults(error_rate=0.0, drop_rate=0.0)
        # 429s, retried (slow_down, Retry-After) and then given up
        app.apply_faults(rate_limit=(1, 60.0))
        monkey = types.SimpleNamespace(sleep=wait.sleep)
        real_asyncio = getattr(client_module, "asyncio")  # noqa: B009
        setattr(client_module, "asyncio", monkey)  # noqa: B010 - the client's sleep only
        try:
            async with expect(RateLimited):
                await cloud.list_groups(SLUG)
                await cloud.list_groups(SLUG)
        finally:
            setattr(client_module, "asyncio", real_asyncio)  # noqa: B010
        assert cloud.limiter.throttled >= 1
        app.apply_faults(rate_limit=None)
    # A 401 (another case: a wrong token); it must not leak either.
    async with client("0" * 40, attempts=1) as stranger, expect(AuthError):
        await stranger.list_groups(SLUG)
    async with client(OTHER_SECRET) as other, expect(NotFound):
        await other.get_group(SLUG, "missing")
    audit.flush()
    return raised, cloud


def dump_store(store: Store) -> dict[str, list[dict[str, Any]]]:
    meta = MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        return {
            name: [dict(row._mapping) for row in conn.execute(select(table))]
            for name, table in meta.tables.items()
        }


@pytest.mark.parametrize("kind", ["in-process", "socket"])
async def test_no_token_anywhere(
    app: EmulatorApp, store: Store, debug_logs: pytest.LogCaptureFixture, kind: str
) -> None:
    with base_url_for(app, kind) as (url, transport):
        raised, cloud = await session(app, url, transport, store)

    # The session really did meet every kind of answer.
    kinds = {type(e).__name__ for e in raised}
    assert kinds == {
        "PermissionDenied",
        "NotFound",
        "BadRequest",
        "ServerError",
        "TransportError",
        "RateLimited",
        "AuthError",
    }
    statuses = set(cloud.status_counts)
    assert {"200", "201", "400", "403", "404", "429"} <= statuses
    assert any(s.startswith("5") for s in statuses)

    # Logs: DEBUG everywhere, and the capture really saw the client and httpx2.
    records = debug_logs.records
    names = {r.name for r in records}
    assert "trayline.particle.client" in names
    assert "httpx2" in names
    if kind == "socket":
        assert any(n.startswith("httpcore") for n in names)
    assert any("retry" in r.getMessage() for r in records)
    for record in records:
        assert not leaks(record.getMessage()), record.getMessage()
        assert not leaks(repr(record.args)), record.name
    assert not leaks(debug_logs.text)
    assert not leaks(debug_logs.text, OTHER_SECRET)

    # The store: every column of every row of every table.
    tables = dump_store(store)
    assert tables["cloud_calls"], "the audit log recorded the session"
    assert len(tables["cloud_calls"]) >= cloud.requests_sent
    assert {row["status"] for row in tables["cloud_calls"]} >= {None, 200, 403, 404, 429}
    assert tables["serial_lookups"]
    for name, rows in tables.items():
        for row in rows:
            for value in row.values():
                assert not leaks(str(value)), f"{name}: {row}"
                assert not leaks(str(value), OTHER_SECRET), f"{name}: {row}"

    # Exceptions: message, repr, body, traceback.
    assert raised
    for exc in raised:
        for text in exception_texts(exc):
            assert not leaks(text), text
            assert not leaks(text, OTHER_SECRET), text

    # The token object and the client.
    token = AccessToken(SECRET)
    for text in (
        repr(token),
        str(token),
        f"{token}",
        format(token, ""),
        repr(cloud),
        repr([token]),
    ):
        assert not leaks(text)
    assert repr(token) == f"<token {token.fingerprint[:6]}>"


def test_access_token_is_masked_and_not_serialisable() -> None:
    token = AccessToken(f"  {SECRET}\n")
    assert token.reveal() == SECRET
    assert not leaks(repr(token)) and not leaks(str(token))
    assert token == AccessToken(SECRET) and token != AccessToken(OTHER_SECRET)
    assert len(token.fingerprint) == 16 and not leaks(token.fingerprint)
    with pytest.raises(TypeError) as info:
        pickle.dumps(token)
    assert not leaks(str(info.value))
    for bad in ("", "   ", f"{SECRET} extra", f"{SECRET}\x07"):
        with pytest.raises(TokenError) as bad_info:
            AccessToken(bad)
        assert not leaks(str(bad_info.value))


def test_token_from_env() -> None:
    assert token_from_env({"PARTICLE_ACCESS_TOKEN": SECRET}) == AccessToken(SECRET)
    assert token_from_env({"PARTICLE_ACCESS_TOKEN": "  "}) is None
    assert token_from_env({}) is None


def write_token(path: Path, text: str, mode: int) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.skipif(os.name != "posix", reason="file modes")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o606])
def test_token_file_refuses_shared_modes(tmp_path: Path, mode: int) -> None:
    path = write_token(tmp_path / "token", SECRET + "\n", mode)
    with pytest.raises(TokenError) as info:
        token_from_file(path)
    message = str(info.value)
    assert f"mode {mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert not leaks(message) and not leaks(repr(info.value))
    assert info.value.__cause__ is None


@pytest.mark.skipif(os.name != "posix", reason="file modes")
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_token_file_accepts_private_modes(tmp_path: Path, mode: int) -> None:
    path = write_token(tmp_path / "token", f"\n  {SECRET}  \n\n", mode)
    assert token_from_file(path).reveal() == SECRET


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_token_file_errors_never_echo_the_token(tmp_path: Path) -> None:
    problems = [
        write_token(tmp_path / "two-lines", f"{SECRET}\n{OTHER_SECRET}\n", 0o600),
        write_token(tmp_path / "spaces", f"{SECRET} {OTHER_SECRET}\n", 0o600),
        write_token(tmp_path / "empty", "\n\n", 0o600),
        tmp_path / "missing",
        tmp_path,
    ]
    (tmp_path / "binary").write_bytes(b"\xff\xfe" + SECRET.encode())
    (tmp_path / "binary").chmod(0o600)
    problems.append(tmp_path / "binary")
    for path in problems:
        with pytest.raises(TokenError) as info:
            token_from_file(path)
        if path.name != "spaces":  # that one is AccessToken's own message
            assert str(path) in str(info.value)
        assert not leaks(str(info.value)) and not leaks(str(info.value), OTHER_SECRET)
        assert info.value.__cause__ is None

"""The client-side rate limiter, the rate-limit syntax and the serial-lookup budget."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trayline.particle.ratelimit import (
    DEFAULT_RATE_LIMIT,
    SERIAL_LOOKUP_LIMIT,
    HostWindow,
    InvalidRateLimit,
    MemorySerialBudget,
    RateLimit,
    RateLimiter,
    next_serial_slot,
    rate_limit_from_env,
)


class FakeTime:
    """A clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


async def send(lim: RateLimiter) -> None:
    """One request: a slot, then its answer at once (every slot is settled or released)."""
    lim.settle(await lim.acquire())


def limiter(limit: RateLimit, fake: FakeTime, headroom: float = 1.0) -> RateLimiter:
    return RateLimiter(limit, headroom=headroom, clock=fake.clock, sleep=fake.sleep)


# ----------------------------------------------------------------------------- RateLimit.parse


@pytest.mark.parametrize(
    ("text", "requests", "seconds"),
    [
        ("10000/300", 10000, 300.0),
        ("50/1h", 50, 3600.0),
        ("600/5m", 600, 300.0),
        (" 10 / 2.5 s ", 10, 2.5),
        ("7/2sec", 7, 2.0),
        ("5/2minutes", 5, 120.0),
        ("1/1hour", 1, 3600.0),
        ("3/0.5", 3, 0.5),
    ],
)
def test_parse(text: str, requests: int, seconds: float) -> None:
    limit = RateLimit.parse(text)
    assert (limit.requests, limit.seconds) == (requests, seconds)


@pytest.mark.parametrize(
    "text", ["", "abc", "10", "10/", "/300", "0/5", "5/0", "-1/5", "10/300x", "1/1d", "1.5/3"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidRateLimit) as info:
        RateLimit.parse(text)
    assert isinstance(info.value, ValueError)
    assert repr(text) in str(info.value)


def test_rate_limit_str_and_rate() -> None:
    assert str(DEFAULT_RATE_LIMIT) == "10000/300"
    assert DEFAULT_RATE_LIMIT.per_second == pytest.approx(10000 / 300)
    assert str(RateLimit.parse("50/1h")) == "50/3600"
    assert RateLimit(50, 3600) == SERIAL_LOOKUP_LIMIT


def test_rate_limit_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAYLINE_RATE_LIMIT", raising=False)
    assert rate_limit_from_env() == DEFAULT_RATE_LIMIT
    monkeypatch.setenv("TRAYLINE_RATE_LIMIT", "600/5m")
    assert rate_limit_from_env() == RateLimit(600, 300)
    assert rate_limit_from_env("20/10") == RateLimit(20, 10), "an explicit value wins"
    monkeypatch.setenv("TRAYLINE_RATE_LIMIT", "")
    assert rate_limit_from_env() == DEFAULT_RATE_LIMIT
    monkeypatch.setenv("TRAYLINE_RATE_LIMIT", "lots")
    with pytest.raises(InvalidRateLimit):
        rate_limit_from_env()


# ----------------------------------------------------------------------------- the sliding window


def assert_window_respected(times: list[float], capacity: int, seconds: float) -> None:
    """In the window (t - seconds, t] ending at any send, at most ``capacity`` sends."""
    for i, t in enumerate(times):
        in_window = [s for s in times[: i + 1] if s > t - seconds]
        assert len(in_window) <= capacity, f"{len(in_window)} sends in the window ending {t}"


@pytest.mark.parametrize("seed", range(6))
async def test_window_never_over_capacity(seed: int) -> None:
    rng = random.Random(seed)
    fake = FakeTime()
    limit = RateLimit(rng.randint(3, 12), rng.choice([1.0, 2.5, 10.0]))
    lim = limiter(limit, fake, headroom=rng.choice([1.0, 0.9, 0.75]))
    sent: list[float] = []
    for _ in range(200):
        if rng.random() < 0.3:
            fake.now += rng.uniform(0, limit.seconds / 2)
        await send(lim)
        sent.append(fake.now)
    assert sent == sorted(sent)
    assert_window_respected(sent, lim.capacity, limit.seconds)
    assert lim.sent_in_window() <= lim.capacity


async def test_concurrent_senders_share_the_window() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(5, 1.0), fake)
    sent: list[float] = []

    async def sender() -> None:
        for _ in range(10):
            await send(lim)
            sent.append(fake.now)
            await asyncio.sleep(0)

    await asyncio.gather(*(sender() for _ in range(8)))
    assert len(sent) == 80
    assert_window_respected(sorted(sent), 5, 1.0)
    # Full speed: 80 requests at 5/s take about 15 s of (fake) time, not more.
    assert fake.now - 1000.0 == pytest.approx(15.0, abs=1.01)


async def test_first_burst_is_immediate() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(10, 60), fake)
    for _ in range(10):
        await send(lim)
    assert fake.slept == []
    assert lim.sent_in_window() == 10
    await send(lim)
    assert sum(fake.slept) == pytest.approx(60.0, abs=0.001)


def test_headroom() -> None:
    assert RateLimiter(RateLimit(10000, 300)).capacity == 9500
    assert RateLimiter(RateLimit(100, 10), headroom=0.9).capacity == 90
    assert RateLimiter(RateLimit(100, 10), headroom=1.0).capacity == 100
    assert RateLimiter(RateLimit(1, 10), headroom=0.5).capacity == 1, "never below one"
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError):
            RateLimiter(RateLimit(100, 10), headroom=bad)


async def test_slow_down_pauses_everyone_and_shrinks() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(100, 10), fake)
    await send(lim)
    lim.slow_down(7.0)
    assert lim.throttled == 1
    assert lim.capacity == 80
    start = fake.now
    await send(lim)
    assert fake.now - start >= 7.0
    # A burst of 429s in one episode (answers already on the wire) shrinks it once.
    for _ in range(32):
        lim.slow_down(0.0)
    assert lim.capacity == 80 and lim.episodes == 1
    # Separate episodes (each after the last one's pause) shrink it to a quarter at most.
    for _ in range(20):
        fake.now += 2.0
        lim.slow_down(0.0)
    assert lim.capacity == 25
    assert lim.throttled == 53


async def test_slow_down_without_retry_after() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(100, 300), fake)
    lim.slow_down(None)
    start = fake.now
    await send(lim)
    assert fake.now - start == pytest.approx(5.0), "min(window / 10, 5 s)"
    short = limiter(RateLimit(100, 10), fake)
    short.slow_down(None)
    start = fake.now
    await send(short)
    assert fake.now - start == pytest.approx(1.0)


def test_slow_down_keeps_the_longer_pause() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(100, 10), fake)
    lim.slow_down(30.0)
    lim.slow_down(2.0)
    assert lim._paused_until == pytest.approx(fake.now + 30.0)


def test_capacity_recovers_within_a_minute_of_clean_answers() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(1000, 10), fake)
    for _ in range(100):
        lim.succeeded()
    assert lim.capacity == 1000, "at full capacity success changes nothing"
    lim.slow_down(0.0)
    assert lim.capacity == 800
    fake.now += 30.0
    lim.succeeded()
    assert lim.capacity == 900, "half way back after half a minute"
    fake.now += 15.0
    lim.succeeded()
    assert 900 < lim.capacity < 1000
    fake.now += 15.0
    lim.succeeded()
    assert lim.capacity == 1000, "all back a minute after the last 429"


def test_a_new_429_starts_recovery_again() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(100, 10), fake)
    lim.slow_down(0.0)  # 80
    fake.now += 30.0
    lim.succeeded()  # 90
    lim.slow_down(0.0)  # a new episode: 72
    assert lim.capacity == 72
    lim.succeeded()
    assert lim.capacity == 72, "no calm yet"


async def test_release_gives_the_slot_back() -> None:
    fake = FakeTime()
    lim = limiter(RateLimit(1, 5.0), fake)
    slot = await lim.acquire()
    lim.release(slot)
    start = fake.now
    await lim.acquire()
    assert fake.now == start, "a released slot does not count"


async def test_cancelled_request_releases_its_slot() -> None:
    """A request cancelled while it waits to be sent leaves no slot behind (client finally)."""
    import httpx2

    from trayline.particle.auth import AccessToken
    from trayline.particle.client import BEFORE_SEND, ParticleClient

    gate = asyncio.Event()

    async def before_send() -> None:
        await gate.wait()

    lim = RateLimiter(RateLimit(1, 3600.0))
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json={"ok": True}))
    client = ParticleClient(
        AccessToken("a" * 40), base_url="http://x.test", limiter=lim, transport=transport
    )

    async def claim() -> object:
        BEFORE_SEND.set(before_send)
        return await client.claim_device("a" * 24)

    task = asyncio.create_task(claim())
    await asyncio.sleep(0.01)
    assert lim.sent_in_window() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lim.sent_in_window() == 0
    await client.aclose()


def test_host_window_is_shared_between_limiters(tmp_path: Path) -> None:
    """Two limiters (two processes on one host) on one file never exceed the limit together."""
    fake = FakeTime()
    path = tmp_path / "rate.window"
    a = RateLimiter(
        RateLimit(10, 5.0), headroom=1.0, clock=fake.clock, sleep=fake.sleep, host=HostWindow(path)
    )
    b = RateLimiter(
        RateLimit(10, 5.0), headroom=1.0, clock=fake.clock, sleep=fake.sleep, host=HostWindow(path)
    )
    sent: list[float] = []

    async def go() -> None:
        for n in range(30):
            await send(a if n % 2 else b)
            sent.append(fake.now)

    asyncio.run(go())
    for t in sent:
        assert sum(1 for u in sent if t - 5.0 < u <= t) <= 10
    assert fake.now >= sent[0] + 10.0, "30 requests at 10 per 5 s take two more windows"


def test_host_window_matches_a_plain_model_of_its_window(tmp_path: Path) -> None:
    """Takes, answers (re-stamps) and give-backs from two handles in a random order: the file
    holds exactly the slots a plain list says are in the window, in order, and refuses
    exactly when that list is full."""
    rng = random.Random(5)
    path = tmp_path / "rate.window"
    handles = [HostWindow(path), HostWindow(path)]
    model: list[float] = []
    in_flight: list[float] = []
    now, seconds, capacity = 100.0, 2.0, 40
    for _ in range(3000):
        now += rng.choice([0.0, 0.001, 0.01, 0.1])
        model = [t for t in model if t > now - seconds]
        handle = rng.choice(handles)
        roll = rng.random()
        if roll < 0.5:
            wait = handle.take(now, capacity, seconds)
            assert (wait == 0.0) == (len(model) < capacity)
            if wait == 0.0:
                model.append(now)
                in_flight.append(now)
            else:
                assert wait == pytest.approx(max(sorted(model)[-capacity] + seconds - now, 0.0005))
        elif in_flight:
            sent = in_flight.pop(rng.randrange(len(in_flight)))
            if sent in model:
                model.remove(sent)
                if roll < 0.9:
                    model.append(now)
            if roll < 0.9:
                handle.restamp(sent, now, seconds)
            else:
                handle.drop(sent, now, seconds)
        _paused, stamps = handle._read(now, seconds)
        assert list(stamps) == sorted(model)


def test_host_window_shares_a_429_pause(tmp_path: Path) -> None:
    fake = FakeTime()
    path = tmp_path / "rate.window"
    a = RateLimiter(RateLimit(100, 5.0), clock=fake.clock, sleep=fake.sleep, host=HostWindow(path))
    b = RateLimiter(RateLimit(100, 5.0), clock=fake.clock, sleep=fake.sleep, host=HostWindow(path))
    a.slow_down(3.0)
    start = fake.now
    asyncio.run(send(b))
    assert fake.now - start == pytest.approx(3.0)


# ----------------------------------------------------------------------------- serial budget


def test_memory_serial_budget_and_next_slot() -> None:
    budget = MemorySerialBudget()
    now = datetime.now(UTC)
    assert next_serial_slot(budget, "acct") is None
    first = now - timedelta(minutes=50)
    budget.record("acct", "P0", first)
    for i in range(1, 50):
        budget.record("acct", f"P{i}", now - timedelta(minutes=10))
    assert len(budget.used("acct", now - timedelta(hours=1))) == 50
    next_at = next_serial_slot(budget, "acct")
    assert next_at is not None
    assert next_at == first + timedelta(hours=1)
    assert next_serial_slot(budget, "someone-else") is None
    # Lookups older than the hour no longer count.
    old = MemorySerialBudget()
    for i in range(50):
        old.record("acct", f"P{i}", now - timedelta(hours=2))
    assert next_serial_slot(old, "acct") is None
    assert next_serial_slot(old, "acct", RateLimit(50, 3 * 3600)) is not None


async def test_settled_slot_counts_from_the_answer() -> None:
    """A request answered late holds its slot until a window after the answer, not the send."""
    fake = FakeTime()
    t0 = fake.now
    lim = limiter(RateLimit(2, 10.0), fake)
    slow = await lim.acquire()
    fast = await lim.acquire()
    fake.now = t0 + 1.0
    lim.settle(fast)  # answered after 1 s
    fake.now = t0 + 6.0
    lim.settle(slow)  # the server may have seen this one as late as t0 + 6
    fake.now = t0 + 10.5
    await lim.acquire()  # the slot answered at t0 + 1 frees at t0 + 11
    assert fake.now == pytest.approx(t0 + 11.0)
    await lim.acquire()  # the slow one frees at t0 + 16, not at t0 + 10
    assert fake.now == pytest.approx(t0 + 16.0)


async def test_a_slot_in_flight_counts_until_its_answer() -> None:
    """However long a request is on the wire, its slot counts: the server may count it later."""
    fake = FakeTime()
    t0 = fake.now
    lim = limiter(RateLimit(1, 5.0), fake)
    slot = await lim.acquire()
    waiting = asyncio.create_task(lim.acquire())
    fake.now = t0 + 60.0  # a minute on the wire: far past the window
    await asyncio.sleep(0)
    assert not waiting.done()
    lim.settle(slot)  # answered at t0 + 60: counts until t0 + 65
    await waiting
    assert fake.now == pytest.approx(t0 + 65.0)

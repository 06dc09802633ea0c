"""Keeping a whole job under the Particle Cloud's rate limits.

The cloud allows 10,000 requests per 5 minutes per source IP (spec §9), counted
over a window. Every request of a client — and every retry — first takes a slot
from one shared :class:`RateLimiter`, a sliding window of send times sized a
little under the limit (``headroom``) so that network jitter cannot push the
server's own count over. A job then runs as fast as the limit allows, whatever
the round-trip time, and never meets a 429 in steady state.

A request holds its slot from the moment it is sent, and when its answer
arrives (:meth:`RateLimiter.settle`) the slot is re-stamped with that time.
The server counts a request when it *arrives*, which can be well after it was
sent if the network or the server queues; arrival always comes before the
answer, so counting from the answer keeps the client's window at or behind the
server's, never ahead of it.

If a 429 comes anyway (another tool shares the IP, or the limit is lower than
configured), :meth:`RateLimiter.slow_down` stops every sender until the
``Retry-After`` time and shrinks the window's capacity; a run of successes
grows it back. The limit is configurable (``TRAYLINE_RATE_LIMIT=REQUESTS/SECONDS``)
for enterprise accounts with a raised limit and for tests against a scaled-down
local cloud.

The serial-number lookup has its own, much smaller budget (50 per hour per
account); :class:`SerialBudget` is the protocol the client asks before each
lookup, implemented in memory here and persistently in the store.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from trayline import settings
from trayline.core.ratelimits import (
    DEFAULT_RATE_LIMIT,
    SERIAL_LOOKUP_LIMIT,
    InvalidRateLimit,
    RateLimit,
)

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "SERIAL_LOOKUP_LIMIT",
    "InvalidRateLimit",
    "MemorySerialBudget",
    "RateLimit",
    "RateLimiter",
    "SerialBudget",
    "rate_limit_from_env",
]


def rate_limit_from_env(explicit: str | None = None) -> RateLimit:
    """``--rate-limit``, then ``TRAYLINE_RATE_LIMIT``, then the documented 10,000/300."""
    if explicit:
        return RateLimit.parse(explicit)
    return settings.rate_limit() or DEFAULT_RATE_LIMIT


class RateLimiter:
    """A sliding-window limiter shared by every request a client sends.

    ``acquire()`` waits until sending one more request keeps the number sent in
    the last ``limit.seconds`` at or under ``capacity``, and returns a slot
    number; ``settle(slot)`` when the answer arrives moves the slot's time to
    then. Waiters are served in order (one lock), so a burst of concurrent
    senders spreads out evenly.
    """

    def __init__(
        self,
        limit: RateLimit = DEFAULT_RATE_LIMIT,
        *,
        headroom: float = 0.95,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.limit = limit
        self.headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._in_flight: OrderedDict[int, float] = OrderedDict()  # slot -> send time
        self._answered: deque[float] = deque()  # answer times, oldest first
        self._next_slot = 0
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._factor = 1.0
        self._streak = 0
        self.throttled = 0

    @property
    def capacity(self) -> int:
        return max(1, int(self.limit.requests * self.headroom * self._factor))

    def _prune(self, now: float) -> None:
        """Forget slots older than the window (a slot never settled expires by its send time)."""
        edge = now - self.limit.seconds
        answered = self._answered
        while answered and answered[0] <= edge:
            answered.popleft()
        in_flight = self._in_flight
        while in_flight and next(iter(in_flight.values())) <= edge:
            in_flight.popitem(last=False)

    def _used(self) -> int:
        return len(self._in_flight) + len(self._answered)

    def _next_expiry(self) -> float:
        times = []
        if self._answered:
            times.append(self._answered[0])
        if self._in_flight:
            times.append(next(iter(self._in_flight.values())))
        return min(times) + self.limit.seconds

    async def acquire(self) -> int:
        """Wait for room in the window; the slot number is for :meth:`settle`."""
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._pause(self._paused_until - now)
                    continue
                self._prune(now)
                if self._used() < self.capacity:
                    slot = self._next_slot
                    self._next_slot += 1
                    self._in_flight[slot] = now
                    return slot
                await self._pause(max(self._next_expiry() - now, 0.0005))

    def settle(self, slot: int) -> None:
        """The answer to ``slot``'s request arrived: count the slot from now."""
        if self._in_flight.pop(slot, None) is not None:
            self._answered.append(self._clock())

    async def _pause(self, seconds: float) -> None:
        result = self._sleep(seconds)
        if asyncio.iscoroutine(result):
            await result

    def slow_down(self, retry_after: float | None) -> None:
        """A 429 came back: stop everyone for a while and shrink the window."""
        self.throttled += 1
        self._streak = 0
        self._factor = max(0.25, self._factor * 0.8)
        pause = retry_after if retry_after is not None else min(self.limit.seconds / 10, 5.0)
        self._paused_until = max(self._paused_until, self._clock() + pause)

    def succeeded(self) -> None:
        """A request went through: after a run of successes, give capacity back."""
        if self._factor >= 1.0:
            return
        self._streak += 1
        if self._streak >= max(10, self.capacity // 10):
            self._streak = 0
            self._factor = min(1.0, self._factor + 0.05)

    def sent_in_window(self) -> int:
        self._prune(self._clock())
        return self._used()


class SerialBudget(Protocol):
    """Counts serial-number lookups per account so the 50/hour budget survives restarts."""

    def used(self, account: str, since: datetime) -> list[datetime]:
        """The times of this account's lookups at or after ``since``, oldest first."""

    def record(self, account: str, serial: str, at: datetime) -> None:
        """Note one lookup (recorded before the request is sent: the server counts it)."""


class MemorySerialBudget:
    """A :class:`SerialBudget` that lives as long as the process (tests, one-off calls)."""

    def __init__(self) -> None:
        self._calls: dict[str, list[datetime]] = {}

    def used(self, account: str, since: datetime) -> list[datetime]:
        return [t for t in self._calls.get(account, []) if t >= since]

    def record(self, account: str, serial: str, at: datetime) -> None:
        self._calls.setdefault(account, []).append(at)


def next_serial_slot(
    budget: SerialBudget, account: str, limit: RateLimit = SERIAL_LOOKUP_LIMIT
) -> datetime | None:
    """``None`` if a lookup may go now, else when the next one may."""
    now = datetime.now(UTC)
    window = timedelta(seconds=limit.seconds)
    used = budget.used(account, now - window)
    if len(used) < limit.requests:
        return None
    return used[len(used) - limit.requests] + window

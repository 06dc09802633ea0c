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
``Retry-After`` time and shrinks the window's capacity — once per *episode*:
the 32 answers of a burst that were already on the wire when the first 429
came say the same thing once, not 32 times. Clean answers give the capacity
back in steps, all of it within :data:`RECOVERY_SECONDS` of the last 429. The
limit is configurable (``TRAYLINE_RATE_LIMIT=REQUESTS/SECONDS``) for
enterprise accounts with a raised limit and for tests against a scaled-down
local cloud.

The cloud counts per source IP, so every trayline process on one host must
share one budget: with a :class:`HostWindow` (a small file in a per-user
runtime folder, one per cloud URL, read and rewritten under an exclusive
``flock``), a slot is granted only when both the process's own window and the
host's have room, and a 429 pauses every process on the host.

The serial-number lookup has its own, much smaller budget (50 per hour per
account); :class:`SerialBudget` is the protocol the client asks before each
lookup, implemented in memory here and persistently in the store.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import tempfile
import time
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trayline import settings
from trayline.core.calls import SerialBudget
from trayline.core.ratelimits import (
    DEFAULT_RATE_LIMIT,
    SERIAL_LOOKUP_LIMIT,
    InvalidRateLimit,
    RateLimit,
)

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "RECOVERY_SECONDS",
    "SERIAL_LOOKUP_LIMIT",
    "HostWindow",
    "InvalidRateLimit",
    "MemorySerialBudget",
    "RateLimit",
    "RateLimiter",
    "SerialBudget",
    "rate_limit_from_env",
]


RECOVERY_SECONDS = 60.0
"""After the last 429, clean answers restore the full capacity within this many seconds."""
SHRINK = 0.8
"""Capacity kept after a 429 episode (never below a quarter)."""


def rate_limit_from_env(explicit: str | None = None) -> RateLimit:
    """``--rate-limit``, then ``TRAYLINE_RATE_LIMIT``, then the documented 10,000/300."""
    if explicit:
        return RateLimit.parse(explicit)
    return settings.rate_limit() or DEFAULT_RATE_LIMIT


class HostWindow:
    """The send times of every trayline process on this host talking to one cloud.

    A file of doubles in the host's byte order: the first is the time until
    which every sender pauses (after a 429), the rest the ``time.monotonic()``
    stamps of the requests sent in the last window, oldest first — a clock
    every process on the host shares. Each call locks the file (``flock``),
    cuts the stamps older than the window with a binary search, decides, and
    rewrites it: a few microseconds whatever the window holds, so a job at
    hundreds of requests a second spends next to nothing here. Stamps in the
    future (a file that survived a reboot) are dropped.

    The stamps stay in order because every new one is the current time, put
    in its place with ``insort`` (another process may have written a stamp a
    hair later than ours while we waited for the lock).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = fd

    @classmethod
    def for_cloud(cls, api_url: str, folder: Path | None = None) -> HostWindow:
        """The shared window for ``api_url`` in the per-user runtime folder."""
        base = folder or Path(tempfile.gettempdir()) / f"trayline-{os.getuid()}"
        digest = hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()[:16]
        return cls(base / f"rate-{digest}.v2.window")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _read(self, now: float, seconds: float) -> tuple[float, array[float]]:
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size - size % 8, 0)
        values = array("d")
        values.frombytes(data)
        paused = values[0] if values else 0.0
        first = bisect_right(values, now - seconds, 1) if values else 0
        last = bisect_right(values, now + 1.0, max(first, 1)) if values else 0
        if paused > now + seconds + 3600:
            paused = 0.0
        return paused, values[max(first, 1) : last]

    def _write(self, paused: float, stamps: array[float]) -> None:
        data = array("d", (paused,)).tobytes() + stamps.tobytes()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def take(self, now: float, capacity: int, seconds: float) -> float:
        """Take a slot at ``now`` (returns 0.0) or say how long to wait before trying again."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            paused, stamps = self._read(now, seconds)
            if now < paused:
                return paused - now
            if len(stamps) >= capacity:
                return max(stamps[len(stamps) - capacity] + seconds - now, 0.0005)
            insort(stamps, now)
            self._write(paused, stamps)
            return 0.0
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def restamp(self, sent: float, now: float, seconds: float) -> None:
        """Count the slot taken at ``sent`` from ``now`` (its answer arrived)."""

        def change(paused: float, stamps: array[float]) -> float:
            if _remove(stamps, sent):
                insort(stamps, now)
            return paused

        self._edit(now, seconds, change)

    def drop(self, sent: float, now: float, seconds: float) -> None:
        """Give back the slot taken at ``sent``: its request never went out."""

        def change(paused: float, stamps: array[float]) -> float:
            _remove(stamps, sent)
            return paused

        self._edit(now, seconds, change)

    def pause_until(self, until: float, now: float, seconds: float) -> None:
        self._edit(now, seconds, lambda paused, _stamps: max(paused, until))

    def _edit(
        self, now: float, seconds: float, change: Callable[[float, array[float]], float]
    ) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            paused, stamps = self._read(now, seconds)
            self._write(change(paused, stamps), stamps)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def _remove(stamps: array[float], sent: float) -> bool:
    """Remove one stamp equal to ``sent`` (they are in order); False if it has left the window."""
    at = bisect_left(stamps, sent)
    if at < len(stamps) and stamps[at] == sent:
        del stamps[at]
        return True
    return False


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
        host: HostWindow | None = None,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.limit = limit
        self.headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._host = host
        self._in_flight: OrderedDict[int, float] = OrderedDict()  # slot -> send time
        self._answered: deque[float] = deque()  # answer times, oldest first
        self._next_slot = 0
        self._lock = asyncio.Lock()
        self._room = asyncio.Event()
        self._paused_until = 0.0
        self._factor = 1.0
        self._shrunk_to = 1.0  # the factor the last episode left
        self._last_429 = -1e18
        self._episode_until = -1e18
        self.throttled = 0
        self.episodes = 0

    @property
    def capacity(self) -> int:
        return max(1, int(self.limit.requests * self.headroom * self._factor))

    def _prune(self, now: float) -> None:
        """Forget answered slots older than the window.

        A slot still in flight is never forgotten, however old: the server counts
        a request when it arrives, which may be later still (a queue, a slow
        network). Every slot is settled or released by the client (``finally``),
        so none is in flight for ever.
        """
        edge = now - self.limit.seconds
        answered = self._answered
        while answered and answered[0] <= edge:
            answered.popleft()

    def _used(self) -> int:
        return len(self._in_flight) + len(self._answered)

    async def _wait_for_room(self, now: float) -> None:
        """Until the oldest answered slot leaves the window, or (all in flight) an answer."""
        if self._answered:
            await self._pause(max(self._answered[0] + self.limit.seconds - now, 0.0005))
            return
        self._room.clear()
        await self._room.wait()

    async def acquire(self) -> int:
        """Wait for room in the window; the slot number is for :meth:`settle`."""
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._pause(self._paused_until - now)
                    continue
                self._prune(now)
                if self._used() >= self.capacity:
                    await self._wait_for_room(now)
                    continue
                if self._host is not None:
                    wait = self._host.take(now, self.capacity, self.limit.seconds)
                    if wait > 0:
                        await self._pause(wait)
                        continue
                slot = self._next_slot
                self._next_slot += 1
                self._in_flight[slot] = now
                return slot

    def settle(self, slot: int) -> None:
        """The answer to ``slot``'s request arrived: count the slot from now."""
        sent = self._in_flight.pop(slot, None)
        if sent is not None:
            now = self._clock()
            self._answered.append(now)
            self._room.set()
            if self._host is not None:
                self._host.restamp(sent, now, self.limit.seconds)

    def release(self, slot: int) -> None:
        """Give ``slot`` back: its request was cancelled before it went out."""
        sent = self._in_flight.pop(slot, None)
        self._room.set()
        if sent is not None and self._host is not None:
            self._host.drop(sent, self._clock(), self.limit.seconds)

    async def _pause(self, seconds: float) -> None:
        result = self._sleep(seconds)
        if asyncio.iscoroutine(result):
            await result

    def slow_down(self, retry_after: float | None) -> None:
        """A 429 came back: stop everyone for a while; shrink the window once per episode.

        An episode is the 429 and every other 429 that arrives before the pause
        it caused is over (plus a second): those requests were on the wire
        already and carry no new news.
        """
        self.throttled += 1
        now = self._clock()
        self._last_429 = now
        pause = retry_after if retry_after is not None else min(self.limit.seconds / 10, 5.0)
        self._paused_until = max(self._paused_until, now + pause)
        if self._host is not None:
            self._host.pause_until(self._paused_until, now, self.limit.seconds)
        if now < self._episode_until:
            return
        self.episodes += 1
        self._episode_until = self._paused_until + 1.0
        self._factor = self._shrunk_to = max(0.25, self._factor * SHRINK)

    def succeeded(self) -> None:
        """A clean answer: grow back towards full capacity, fully within a minute of calm."""
        if self._factor >= 1.0:
            return
        calm = self._clock() - self._last_429
        share = min(1.0, max(0.0, calm / RECOVERY_SECONDS))
        self._factor = max(self._factor, self._shrunk_to + (1.0 - self._shrunk_to) * share)

    def sent_in_window(self) -> int:
        self._prune(self._clock())
        return self._used()


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

"""Bad days on purpose: the rate-limit window and injected latency, errors and drops.

A provisioning run at a contract manufacturer meets 429s, slow answers, 5xx
hiccups and connections that die mid-request. The emulator produces each on
demand so trayline's client proves it retries the right things and only those.

* :class:`SlidingWindow` counts requests per key (client address for the general
  limit, user account for the serial lookup) over the last ``window`` seconds. A
  request over the limit learns how long until the oldest counted request falls
  out of the window: that is the ``Retry-After`` the 429 carries (whole seconds,
  at least 1).
* :class:`FaultDice` decides, per request, the extra delay and whether to answer
  with a random 500/502/503 or drop the connection. It rolls one seeded
  ``random.Random`` so a seeded run injects the same faults in the same order.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FaultDice", "FaultPlan", "SlidingWindow"]

Clock = Callable[[], float]


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window`` seconds."""

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> float | None:
        """Count a hit; ``None`` if allowed, else seconds until a slot frees (nothing counted)."""
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        return None

    @staticmethod
    def retry_after(wait: float) -> int:
        """The ``Retry-After`` header value: whole seconds, rounded up, at least 1."""
        return max(1, math.ceil(wait))


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one request: wait ``delay`` seconds, then drop, fail or serve."""

    delay: float = 0.0
    drop: bool = False
    error_status: int | None = None


_NO_FAULT = FaultPlan()
ERROR_STATUSES = (500, 502, 503)


class FaultDice:
    """Seeded decisions for latency, jitter, error rate and drop rate."""

    def __init__(
        self,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.error_rate = error_rate
        self.drop_rate = drop_rate
        self.rng = random.Random(seed)

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.jitter_ms or self.error_rate or self.drop_rate)

    def roll(self) -> FaultPlan:
        if not self.active:
            return _NO_FAULT
        delay = self.latency_ms
        if self.jitter_ms:
            delay += self.rng.uniform(0.0, self.jitter_ms)
        drop = bool(self.drop_rate) and self.rng.random() < self.drop_rate
        error = None
        if not drop and self.error_rate and self.rng.random() < self.error_rate:
            error = self.rng.choice(ERROR_STATUSES)
        return FaultPlan(delay=delay / 1000.0, drop=drop, error_status=error)

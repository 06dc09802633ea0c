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
* :func:`check_faults` refuses settings no rehearsal needs and that would stall
  the server (a ``latency_ms`` of 1e308, NaN, a negative rate): each setting has
  a documented maximum.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_DELAY_MS",
    "MAX_RATE_REQUESTS",
    "MAX_RATE_WINDOW_S",
    "FaultDice",
    "FaultPlan",
    "SlidingWindow",
    "check_faults",
]

MAX_DELAY_MS = 60_000.0
"""Largest ``latency_ms`` or ``jitter_ms``: a minute is slower than any real answer."""
MAX_RATE_REQUESTS = 1_000_000_000
MAX_RATE_WINDOW_S = 86_400.0
"""A rate-limit window longer than a day tests nothing a day-long window does not."""
_DELAYS = ("latency_ms", "jitter_ms")
_RATES = ("error_rate", "drop_rate")

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


def check_faults(
    raw: Mapping[str, Any], parse_rate: Callable[[str], tuple[int, float]]
) -> dict[str, Any]:
    """Typed, bounded fault changes from ``raw`` (any subset), or ``ValueError`` saying why.

    ``rate_limit`` is ``REQUESTS/SECONDS`` text (``parse_rate``), or ``None``/``""``/
    ``"off"`` for no limit. Delays are milliseconds from 0 to :data:`MAX_DELAY_MS`;
    rates are fractions from 0 to 1. Numbers may come as JSON numbers or as text
    (form bodies, the CLI); booleans, NaN and infinities are refused.
    """
    changes: dict[str, Any] = {}
    if "rate_limit" in raw:
        text = raw["rate_limit"]
        if text is None or text in ("", "off"):
            changes["rate_limit"] = None
        elif not isinstance(text, str):
            raise ValueError('rate_limit must be text like "100/5", or null or "off"')
        else:
            requests, seconds = parse_rate(text)
            if requests > MAX_RATE_REQUESTS or seconds > MAX_RATE_WINDOW_S:
                raise ValueError(
                    f"rate_limit {text!r}: at most {MAX_RATE_REQUESTS} requests "
                    f"per at most {MAX_RATE_WINDOW_S:g} seconds"
                )
            changes["rate_limit"] = (requests, seconds)
    for name in _DELAYS + _RATES:
        if name in raw:
            top = MAX_DELAY_MS if name in _DELAYS else 1.0
            changes[name] = _bounded(name, raw[name], top)
    return changes


def _bounded(name: str, raw: object, top: float) -> float:
    if name.endswith("_ms"):
        message = f"{name} must be a number of milliseconds from 0 to {top:g}"
    else:
        message = f"{name} must be a fraction from 0 to 1, e.g. 0.05"
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(message)
    try:
        value = float(raw)
    except (ValueError, OverflowError):
        raise ValueError(message) from None
    if not math.isfinite(value) or not 0.0 <= value <= top:
        raise ValueError(f"{message}, got {str(raw)[:40]}")
    return value

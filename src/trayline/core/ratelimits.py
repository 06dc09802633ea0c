"""The one reader of ``REQUESTS/SECONDS``: rate limits as people write them.

A rate limit is written the same way everywhere trayline takes one: the
``--rate-limit`` option of ``provision`` and ``sims``, ``TRAYLINE_RATE_LIMIT``,
the local cloud's ``--rate-limit`` and ``--serial-limit`` and its
``POST /_emulator/faults`` body. Two parsers used to accept different unit
words (``50/1hours`` worked for one and not the other); this module is now the
only one, so a value that works in one place works in all of them.

Grammar: ``REQUESTS/SECONDS`` with an optional unit after the seconds, spaces
allowed around each part: ``10000/300``, ``600/5m``, ``50/1h``, ``10 / 2.5 s``.
Units: ``s``, ``sec``, ``second(s)``; ``m``, ``min``, ``minute(s)``; ``h``,
``hour(s)``. REQUESTS is a whole number ≥ 1; SECONDS a positive number.

Pure: no I/O, standard library only (domain layer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "OFF_WORDS",
    "SERIAL_LOOKUP_LIMIT",
    "InvalidRateLimit",
    "RateLimit",
]

_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*", re.IGNORECASE)
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
}

OFF_WORDS = frozenset({"off"})
"""What means "no limit" where a limit may be switched off (the local cloud), any case."""


class InvalidRateLimit(ValueError):
    """A ``REQUESTS/SECONDS`` string that cannot be read; the message quotes it."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``requests`` allowed in any window of ``seconds``."""

    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Read ``10000/300`` (seconds), also ``50/1h`` or ``600/5m``."""
        match = _RATE.fullmatch(text)
        unit = (match[3] or "s").lower() if match else ""
        if not match or unit not in _UNIT_SECONDS:
            raise InvalidRateLimit(
                f"{text!r} is not a rate limit: expected REQUESTS/SECONDS, e.g. 10000/300 "
                f"or 50/1h (units s, m, h)"
            )
        requests = int(match[1])
        seconds = float(match[2]) * _UNIT_SECONDS[unit]
        if requests < 1 or seconds <= 0:
            raise InvalidRateLimit(f"{text!r}: requests and seconds must both be positive")
        return cls(requests, seconds)

    @classmethod
    def parse_or_off(cls, text: str | None) -> RateLimit | None:
        """:meth:`parse`, except that ``None``, blank or ``off`` mean no limit."""
        if text is None or not text.strip() or text.strip().lower() in OFF_WORDS:
            return None
        return cls.parse(text)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}"


DEFAULT_RATE_LIMIT = RateLimit(10_000, 300)
"""The Particle Cloud's documented general limit: 10,000 requests per 5 minutes per source IP."""

SERIAL_LOOKUP_LIMIT = RateLimit(50, 3600)
"""The serial-number lookup budget: 50 per hour per user account."""

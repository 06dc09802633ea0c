"""How one request travels: retry policy, answer decoding, API URL checks, the send hook.

Kept apart from :mod:`trayline.particle.client` (the public facade, one method
per endpoint) so that the facade reads as the API it wraps.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx2

from trayline.particle.errors import CloudError, InvalidApiUrl, RateLimited

__all__ = ["BEFORE_SEND", "Answer", "RetryPolicy", "SendHook", "retry_after", "validate_api_url"]

SendHook = Callable[[], Awaitable[None]]
BEFORE_SEND: ContextVar[SendHook | None] = ContextVar("trayline_before_send", default=None)
"""Awaited after a request gets its rate-limit slot and just before its bytes go out.

The provisioning engine sets it per device (``BEFORE_SEND.set(...)`` inside the
task that sends) to write the intent — "this device's rename is on the wire" —
at the last moment, so that a crash repeats only requests that were in flight.
"""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures.

    Server errors and dropped connections are retried quickly (``base`` doubling
    to ``cap``); a 429 without ``Retry-After`` waits longer (``rate_limited_base``
    doubling to ``rate_limited_cap``), because "making another request
    immediately will not help" (spec §9). Delays use full jitter so that many
    concurrent senders do not retry in lock step.
    """

    max_attempts: int = 8
    base: float = 0.25
    cap: float = 30.0
    rate_limited_base: float = 5.0
    rate_limited_cap: float = 300.0

    def delay(self, attempt: int, error: CloudError, rng: random.Random) -> float:
        if isinstance(error, RateLimited):
            if error.retry_after is not None:
                return error.retry_after + rng.uniform(0, 0.25)
            ceiling = min(self.rate_limited_cap, self.rate_limited_base * 2 ** (attempt - 1))
        else:
            ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True, slots=True)
class Answer:
    """A decoded answer body; ``not_json`` for a body the Particle API would never send."""

    content: Any
    not_json: bool
    kind: str
    retry_after: float | None

    @classmethod
    def of(cls, response: httpx2.Response) -> Answer:
        wait = retry_after(response.headers.get("Retry-After"))
        if not response.content:
            return cls({}, False, "nothing", wait)
        try:
            return cls(response.json(), False, "JSON", wait)
        except ValueError:
            ctype = response.headers.get("Content-Type", "").split(";")[0].strip() or "text"
            html = "html" in ctype or b"<html" in response.content[:512].lower()
            kind = "an HTML page" if html else f"a {ctype} body"
            return cls({"error": response.text[:200]}, True, kind, wait)


def validate_api_url(url: str) -> str:
    """``url`` without a trailing slash, or :class:`InvalidApiUrl` if it cannot be the API."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidApiUrl(f"API URL {url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidApiUrl(
            f"API URL {url!r} must be http:// or https:// and a host, e.g. https://api.particle.io"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidApiUrl(f"API URL {parts.scheme}://{parts.hostname}…: no user, query or #")
    if port == 0:
        raise InvalidApiUrl(f"API URL {url!r}: port 0")
    return url.rstrip("/")

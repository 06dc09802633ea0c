"""``since=`` as people and machines write it: an ISO date or time, or ``7d`` / ``12h``.

A bad value is the caller's mistake: a 422 naming the parameter, shaped like
FastAPI's own validation errors; never a 500.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.exceptions import RequestValidationError

from trayline.store.models.base import utcnow

__all__ = ["parse_since"]

_RELATIVE = re.compile(r"(\d{1,4})([dh])")


def parse_since(text: str | None) -> datetime | None:
    """``None``/empty → None; ``7d``, ``12h`` → that long ago; else ISO 8601 (UTC if naive)."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return utcnow() - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        when = datetime.fromisoformat(value)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        why = f"since={value!r}: use an ISO date or time (2026-11-25, 2026-11-25T06:00) or 7d/12h"
        raise RequestValidationError(
            [{"loc": ("query", "since"), "msg": why, "type": "value_error", "input": value}]
        ) from None

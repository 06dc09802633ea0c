"""A visible wait: one line on stderr counting down to a time, for ``--wait-for-budget``.

Waiting silently for the serial-lookup budget (up to an hour) looks like a hang;
without ``--wait-for-budget`` commands say at once that the budget is spent and
when it refills. With it, this line shows what is awaited and how long is left,
updated every second, and Ctrl-C stops the wait like any other.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from trayline.cli.console import err

__all__ = ["countdown"]


def _left(until: datetime) -> float:
    return (until - datetime.now(UTC)).total_seconds()


async def countdown(until: datetime, what: str) -> None:
    """Wait until ``until`` (UTC), showing ``what`` and the minutes and seconds left."""
    with err.status("") as status:
        while (left := _left(until)) > 0:
            minutes, seconds = divmod(int(left + 0.999), 60)
            status.update(
                f"{what}: waiting {minutes:02d}:{seconds:02d} (until {until:%H:%M:%S} UTC)"
            )
            await asyncio.sleep(min(1.0, left))
    err.print(f"{what}: budget refilled, going on", markup=False, highlight=False)

"""What the cloud client and the store agree on: call records and the serial-lookup budget.

The client (an adapter over HTTP) reports each request attempt as a
:class:`CallRecord` to its :class:`CallObserver` s, and asks a
:class:`SerialBudget` before each serial-number lookup; the store (an adapter
over SQL) implements both. Neither may import the other (ARCHITECTURE.md: the
store imports no HTTP library; the client does not import the store), so the
shapes they share live here, in the domain, with no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["CallObserver", "CallRecord", "SerialBudget"]


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One attempt at one request, as the audit log keeps it (no URL, body or header)."""

    method: str
    path_template: str
    """``/v1/products/{product}/devices``: the route, never the IDs or query in it."""
    status: int | None
    """The HTTP status, or ``None`` when no answer came (transport error, cancel)."""
    duration_ms: float
    attempt: int
    """1 for the first try, 2 for the first retry, ..."""
    error_kind: str | None
    """The failure class name (``RateLimited``, ``TransportError``) or ``None``."""


class CallObserver(Protocol):
    """Anything told about every attempt: the store's audit log, a job's counters."""

    def record_call(self, call: CallRecord) -> None: ...


class SerialBudget(Protocol):
    """Counts serial-number lookups per account so the 50/hour budget survives restarts."""

    def used(self, account: str, since: datetime) -> list[datetime]:
        """The times of this account's lookups at or after ``since``, oldest first."""

    def record(self, account: str, serial: str, at: datetime) -> None:
        """Note one lookup (recorded before the request is sent: the server counts it)."""

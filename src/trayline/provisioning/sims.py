"""SIM cards as a service: activating separate 4FF SIMs, and serial lookups within budget.

2G/3G Electrons (E260, E270, E350, ELC314) carry a 4FF nano SIM the device
import does not know about, so those SIMs are imported into the product on
their own (spec §4.1), in chunks of :data:`SIM_CHUNK`. Each chunk writes its
intent (``sims.activate.sent``) before the request and its result after, as
events in the store: the cloud queues activation and emails the result, so
the event log is the line's own record of what was asked.

Serial-number lookups cost one of 50 per hour per account. When the budget is
spent the service says so at once, with when it refills; it waits only when
the caller hands it a ``wait`` (the CLI's ``--wait-for-budget`` countdown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from trayline.particle.client import ParticleClient, SerialBudgetExhausted
from trayline.particle.errors import AuthError, CloudError, NotFound, PermissionDenied
from trayline.store import jobs
from trayline.store.db import Store

__all__ = [
    "SIM_CHUNK",
    "Activation",
    "Lookup",
    "LookupRow",
    "activate_sims",
    "lookup_serials",
]

SIM_CHUNK = 100
BudgetWait = Callable[[datetime], Awaitable[None]]


@dataclass
class Activation:
    """How far an activation got: SIMs accepted, and why it stopped if it did."""

    accepted: int = 0
    error: str | None = None
    exit_code: int = 0


async def activate_sims(
    client: ParticleClient, store: Store, product: str, iccids: Sequence[str]
) -> Activation:
    """Send every ICCID to the product for activation, chunk by chunk, intent then result."""
    result = Activation()
    for start in range(0, len(iccids), SIM_CHUNK):
        chunk = list(iccids[start : start + SIM_CHUNK])
        data: dict[str, object] = {"product": product, "iccids": chunk}

        def note(kind: str, message: str, data: dict[str, object] = data) -> None:
            jobs.add_event(store, kind, message, data, source="sims")

        note("sims.activate.sent", f"{len(chunk)} SIMs sent to {product}")
        try:
            await client.import_sims(product, chunk)
        except (AuthError, NotFound, PermissionDenied) as exc:
            note("sims.activate.failed", str(exc))
            result.error, result.exit_code = str(exc), 3
            return result
        except CloudError as exc:
            note("sims.activate.failed", str(exc))
            result.error, result.exit_code = f"{exc}; run again to retry", 1
            return result
        note("sims.activate.done", f"{len(chunk)} SIMs accepted by {product}")
        result.accepted += len(chunk)
    return result


@dataclass(frozen=True, slots=True)
class LookupRow:
    serial_number: str
    device_id: str | None = None
    iccid: str | None = None
    platform_id: int | None = None
    error: str | None = None


@dataclass
class Lookup:
    rows: list[LookupRow] = field(default_factory=list)
    budget_spent_until: datetime | None = None
    """Set when the lookups stopped because the 50-per-hour budget is spent."""
    error: str | None = None
    exit_code: int = 0


async def lookup_serials(
    client: ParticleClient, serials: Sequence[str], *, wait: BudgetWait | None = None
) -> Lookup:
    """Device ID and ICCID per serial; stops at once when the budget is spent (unless ``wait``)."""
    result = Lookup()
    for serial in serials:
        while True:
            try:
                found = await client.lookup_serial(serial)
            except SerialBudgetExhausted as exc:
                if wait is None:
                    result.budget_spent_until = exc.next_at
                    result.exit_code = 1
                    return result
                await wait(exc.next_at)
                continue
            except NotFound:
                result.rows.append(LookupRow(serial, error="unknown serial number"))
                result.exit_code = 1
            except (AuthError, PermissionDenied) as exc:
                result.error, result.exit_code = str(exc), 3
                return result
            except CloudError as exc:
                result.rows.append(LookupRow(serial, error=str(exc)))
                result.exit_code = 1
            else:
                result.rows.append(
                    LookupRow(serial, found.device_id, found.iccid, found.platform_id)
                )
            break
    return result

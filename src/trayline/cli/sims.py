"""``trayline sims``: activate separate SIM cards, and look up serial numbers within budget.

2G/3G Electrons (E260, E270, E350, ELC314) carry a 4FF nano SIM the device
import does not know about, so those SIMs are imported into the product on their
own (spec §4.1). Serial-number lookup answers the device ID and ICCID of a
device not yet in a product, but only 50 times per hour per account; the budget
is counted in the store so a restart does not reset it.


The loops live in :mod:`trayline.provisioning.sims`; this module parses,
calls the service and renders. Exit codes: 0 done; 1 some serials unknown or
the lookup budget spent (the message says when it refills), or a transient
cloud failure (run again); 2 bad input or configuration; 3 the cloud refused
(token, product, permission); 4 store problem; 130/143 interrupted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import typer
from rich.table import Table

from trayline.cli.console import err, fail, out
from trayline.cli.countdown import countdown
from trayline.cli.interrupt import Interrupted, exit_interrupted, run_interruptibly
from trayline.cli.options import EXIT_STORE, DbOption, RateLimitOption, open_db
from trayline.cli.token import TokenFileOption, resolve_token
from trayline.core.ids import InvalidIdentifier, ProductRef, parse_sticker
from trayline.inputs import Expect, InputError, read_inputs
from trayline.particle.auth import AccessToken
from trayline.particle.client import ParticleClient, api_url_from_env
from trayline.particle.errors import InvalidApiUrl, NotAnApi
from trayline.particle.ratelimit import (
    SERIAL_LOOKUP_LIMIT,
    HostWindow,
    InvalidRateLimit,
    RateLimit,
    RateLimiter,
    rate_limit_from_env,
)
from trayline.provisioning.sims import Activation, Lookup, activate_sims, lookup_serials
from trayline.store.audit import StoreAudit, StoreSerialBudget
from trayline.store.db import Store, StoreError

T = TypeVar("T")

app = typer.Typer(
    help=(
        "SIM cards: activate separate 4FF SIMs, look up serial numbers.\n\n"
        "Example: trayline sims activate --product 12345 --input iccids.txt"
    ),
    no_args_is_help=True,
)


def _client(
    token: AccessToken, store: Store, audit: StoreAudit, limit: RateLimit
) -> ParticleClient:
    try:
        api_url = api_url_from_env()
    except InvalidApiUrl as exc:
        fail(str(exc))
    return ParticleClient(
        token,
        base_url=api_url,
        limiter=RateLimiter(limit, host=HostWindow.for_cloud(api_url)),
        observers=[audit],
        serial_budget=StoreSerialBudget(store),
    )


def _run(store: Store, audit: StoreAudit, work: Callable[[], Awaitable[T]]) -> T:
    """Run the service with Ctrl-C/SIGTERM, store and configuration failures mapped to exits."""
    try:
        return run_interruptibly(work)
    except Interrupted as exc:
        exit_interrupted(exc)
    except NotAnApi as exc:
        fail(exc.message)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    finally:
        with contextlib.suppress(StoreError):  # already reported, or reported by the job
            audit.flush()
        store.dispose()


@app.command()
def activate(
    product: str = typer.Option(..., "--product", help="Product ID or slug."),
    input_file: Path = typer.Option(..., "--input", help="ICCIDs, one per line, or a CSV."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Go on without bad lines."),
    rate_limit: str | None = RateLimitOption,
    token_file: Path | None = TokenFileOption,
    db: str | None = DbOption,
) -> None:
    """Import and activate SIM cards into a product (for 4FF SIMs of 2G/3G Electrons).

    The cloud queues activation and emails the result; it can take up to an hour.

    Example: trayline sims activate --product my-product --input sim-pack-07.txt
    """
    try:
        product_ref = ProductRef.parse(product)
        limit = rate_limit_from_env(rate_limit)
        result = read_inputs(input_file, expect=Expect.ICCIDS)
        result.raise_if_invalid(skip_invalid=skip_invalid)
    except (InvalidIdentifier, InvalidRateLimit, InputError) as exc:
        fail(str(exc))
    for duplicate in result.duplicates:
        err.print(f"warning: {duplicate}", markup=False, highlight=False)
    iccids = [str(d.identifier) for d in result.devices]
    token = resolve_token(token_file)
    store = open_db(db)
    audit = StoreAudit(store)
    client = _client(token, store, audit, limit)

    async def go() -> Activation:
        async with client:
            return await activate_sims(client, store, str(product_ref), iccids)

    done = _run(store, audit, go)
    if done.error:
        err.print(f"error: {done.error}", markup=False)
    else:
        out.print(
            f"{done.accepted} SIMs sent to {product_ref} for activation; the cloud emails "
            f"the result (activation can take up to an hour)"
        )
    raise typer.Exit(done.exit_code)


@app.command()
def lookup(
    serials: list[str] = typer.Argument(..., help="Serial numbers or sticker scans."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    wait_for_budget: bool = typer.Option(
        False,
        "--wait-for-budget",
        help="When the 50-per-hour budget is spent, wait for it (with a countdown) "
        "instead of stopping at once.",
    ),
    token_file: Path | None = TokenFileOption,
    db: str | None = DbOption,
) -> None:
    """Device ID and ICCID for serial numbers, within the 50-per-hour budget.

    For devices already in your product, `trayline provision` reads serials from
    the product's device list instead, which has no such limit.

    Example: trayline sims lookup P028AB1234567XY E26AAA111111111
    """
    try:
        parsed = [parse_sticker(s).serial for s in serials]
    except InvalidIdentifier as exc:
        fail(str(exc))
    token = resolve_token(token_file)
    store = open_db(db)
    budget = StoreSerialBudget(store)
    since = datetime.now(UTC) - timedelta(seconds=SERIAL_LOOKUP_LIMIT.seconds)
    audit = StoreAudit(store)
    client = _client(token, store, audit, rate_limit_from_env())

    async def wait(until: datetime) -> None:
        await countdown(until, "serial-lookup budget spent (50 per hour)")

    async def go() -> Lookup:
        async with client:
            return await lookup_serials(client, parsed, wait=wait if wait_for_budget else None)

    used = len(budget.used(token.fingerprint, since))
    found = _run(store, audit, go)
    left = max(SERIAL_LOOKUP_LIMIT.requests - used - len(found.rows), 0)
    _render_lookup(found, left, as_json)
    raise typer.Exit(found.exit_code)


def _render_lookup(found: Lookup, left: int, as_json: bool) -> None:
    if found.error:
        err.print(f"error: {found.error}", markup=False)
    if found.budget_spent_until is not None:
        left = 0
        err.print(
            f"serial-lookup budget spent (50 per hour per account): the next lookup is possible "
            f"at {found.budget_spent_until:%H:%M:%S} UTC; run again then, or add "
            f"--wait-for-budget to wait with a countdown",
            markup=False,
        )
    rows = [
        {k: v for k, v in asdict(row).items() if v is not None or k == "serial_number"}
        for row in found.rows
    ]
    if as_json:
        doc = {"results": rows, "lookups_left_this_hour": left}
        if found.budget_spent_until is not None:
            doc["budget_refills_at"] = found.budget_spent_until.isoformat(timespec="seconds")
        out.print_json(json.dumps(doc))
        return
    table = Table(title="Serial number lookup")
    for col in ("serial", "device ID", "ICCID", "platform"):
        table.add_column(col)
    for row in found.rows:
        table.add_row(
            row.serial_number,
            row.device_id or row.error or "",
            row.iccid or "",
            str(row.platform_id or ""),
        )
    out.print(table)
    out.print(f"{left} of {SERIAL_LOOKUP_LIMIT.requests} lookups left this hour")

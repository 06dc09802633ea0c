"""``trayline sims``: activate separate SIM cards, and look up serial numbers within budget.

2G/3G Electrons (E260, E270, E350, ELC314) carry a 4FF nano SIM the device
import does not know about, so those SIMs are imported into the product on their
own (spec §4.1). Serial-number lookup answers the device ID and ICCID of a
device not yet in a product, but only 50 times per hour per account; the budget
is counted in the store so a restart does not reset it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from trayline.cli.console import err, fail, out
from trayline.cli.options import DbOption, open_db
from trayline.cli.token import TokenFileOption, resolve_token
from trayline.core.ids import InvalidIdentifier, ProductRef, parse_sticker
from trayline.inputs import Expect, InputError, read_inputs
from trayline.particle.client import ParticleClient, SerialBudgetExhausted, api_url_from_env
from trayline.particle.errors import AuthError, CloudError, NotFound, PermissionDenied
from trayline.particle.ratelimit import (
    SERIAL_LOOKUP_LIMIT,
    InvalidRateLimit,
    RateLimiter,
    rate_limit_from_env,
)
from trayline.store.audit import StoreAudit, StoreSerialBudget
from trayline.store.models import Event

app = typer.Typer(
    help=(
        "SIM cards: activate separate 4FF SIMs, look up serial numbers.\n\n"
        "Example: trayline sims activate --product 12345 --input iccids.txt"
    ),
    no_args_is_help=True,
)

SIM_CHUNK = 100


@app.command()
def activate(
    product: str = typer.Option(..., "--product", help="Product ID or slug."),
    input_file: Path = typer.Option(..., "--input", help="ICCIDs, one per line, or a CSV."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Go on without bad lines."),
    rate_limit: str | None = typer.Option(None, "--rate-limit", envvar="TRAYLINE_RATE_LIMIT"),
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

    def note(kind: str, chunk: list[str], message: str) -> None:
        with store.session() as session:
            session.add(
                Event(
                    kind=kind,
                    source="sims",
                    message=message,
                    data={"product": str(product_ref), "iccids": chunk},
                )
            )

    async def go() -> int:
        done = 0
        async with ParticleClient(
            token, base_url=api_url_from_env(), limiter=RateLimiter(limit), observers=[audit]
        ) as client:
            for start in range(0, len(iccids), SIM_CHUNK):
                chunk = iccids[start : start + SIM_CHUNK]
                note("sims.activate.sent", chunk, f"{len(chunk)} SIMs sent to {product_ref}")
                try:
                    await client.import_sims(str(product_ref), chunk)
                except (AuthError, NotFound, PermissionDenied) as exc:
                    note("sims.activate.failed", chunk, str(exc))
                    err.print(f"error: {exc}", markup=False)
                    return 3
                except CloudError as exc:
                    note("sims.activate.failed", chunk, str(exc))
                    err.print(f"error: {exc}; run again to retry", markup=False)
                    return 1
                note("sims.activate.done", chunk, f"{len(chunk)} SIMs accepted by {product_ref}")
                done += len(chunk)
        out.print(
            f"{done} SIMs sent to {product_ref} for activation; the cloud emails the result "
            f"(activation can take up to an hour)"
        )
        return 0

    code = asyncio.run(go())
    audit.flush()
    store.dispose()
    raise typer.Exit(code)


@app.command()
def lookup(
    serials: list[str] = typer.Argument(..., help="Serial numbers or sticker scans."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
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
    audit = StoreAudit(store)
    results: list[dict[str, object]] = []

    async def go() -> int:
        code = 0
        async with ParticleClient(
            token,
            base_url=api_url_from_env(),
            limiter=RateLimiter(rate_limit_from_env()),
            observers=[audit],
            serial_budget=budget,
        ) as client:
            for serial in parsed:
                try:
                    found = await client.lookup_serial(serial)
                except SerialBudgetExhausted as exc:
                    err.print(f"error: {exc}", markup=False)
                    return 1
                except NotFound:
                    results.append({"serial_number": serial, "error": "unknown serial number"})
                    code = 1
                    continue
                except (AuthError, PermissionDenied) as exc:
                    err.print(f"error: {exc}", markup=False)
                    return 3
                except CloudError as exc:
                    results.append({"serial_number": serial, "error": str(exc)})
                    code = 1
                    continue
                results.append(
                    {
                        "serial_number": serial,
                        "device_id": found.device_id,
                        "iccid": found.iccid,
                        "platform_id": found.platform_id,
                    }
                )
        return code

    code = asyncio.run(go())
    audit.flush()
    since = datetime.now(UTC) - timedelta(seconds=SERIAL_LOOKUP_LIMIT.seconds)
    left = SERIAL_LOOKUP_LIMIT.requests - len(budget.used(token.fingerprint, since))
    store.dispose()
    if as_json:
        out.print_json(json.dumps({"results": results, "lookups_left_this_hour": max(left, 0)}))
    else:
        table = Table(title="Serial number lookup")
        for col in ("serial", "device ID", "ICCID", "platform"):
            table.add_column(col)
        for row in results:
            table.add_row(
                str(row["serial_number"]),
                str(row.get("device_id") or row.get("error")),
                str(row.get("iccid") or ""),
                str(row.get("platform_id") or ""),
            )
        out.print(table)
        out.print(f"{max(left, 0)} of {SERIAL_LOOKUP_LIMIT.requests} lookups left this hour")
    raise typer.Exit(code)

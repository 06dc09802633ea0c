"""``trayline export``: a signed shipment manifest, a batch, and spreadsheets for quality.

At the CM, ``close-batch`` names the ready units packed in one carton and
``manifest`` writes them as a signed manifest for the customer (see
docs/cm-and-customer.md). ``units``, ``measurements`` and ``events`` write CSV
or JSON a quality engineer opens in a spreadsheet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import typer

from trayline.cli.console import fail, out
from trayline.cli.options import DbOption, open_db
from trayline.outbox.exports import write_csv, write_json
from trayline.outbox.manifest import build_manifest
from trayline.outbox.signing import KeyFileError, load_private_key
from trayline.store.db import Store
from trayline.store.exports import (
    close_batch,
    event_rows,
    manifest_units,
    measurement_rows,
    unit_rows,
)

app = typer.Typer(
    help="Shipment manifests (signed) and spreadsheets of units, measurements and events.\n\n"
    "Example: trayline export units --format csv --since 2026-11-01 --out units.csv",
    no_args_is_help=True,
)

SinceOption = typer.Option(
    None, "--since", help="From this UTC time on (ISO 8601: 2026-11-25 or 2026-11-25T08:00)."
)
BatchOption = typer.Option(None, "--batch", help="Only units of this batch (close-batch).")
OutOption = typer.Option(None, "--out", help="Write here (default: standard output).")


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or date-time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option} {value!r}: expected an ISO 8601 time such as 2026-11-25T08:00")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@contextmanager
def _written_atomically(
    path: Path, binary: bool = False, durable: bool = False
) -> Iterator[IO[Any]]:
    """Write via a temporary file and rename: a reader never sees half a file.

    ``durable`` syncs the data to disk before the rename (the signed manifest).
    A write that fails removes the temporary file and ends with one line.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        opened = tmp.open("wb") if binary else tmp.open("w", encoding="utf-8", newline="")
        with opened as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"{path}: cannot write ({exc.strerror})")


@app.command("manifest")
def manifest_command(
    key: Path = typer.Option(..., "--key", help="The site's private key (NAME.key, mode 0600)."),
    batch: str | None = BatchOption,
    since: str | None = typer.Option(
        None, "--since", help="Ready units that became ready from this UTC time on."
    ),
    site: str | None = typer.Option(None, "--site", help="Site name (default: the key's name)."),
    out_file: Path | None = typer.Option(
        None, "--out", help="Manifest file (default: manifest-<batch or time>.json)."
    ),
    db: str | None = DbOption,
) -> None:
    """Write the ready units of a shipment as a manifest signed with the site's key.

    Device IDs, serials, ICCIDs, SKU, parts, test verdicts with measurements,
    firmware digests; never a mobile secret or an access token.

    Example: trayline export manifest --batch carton-0042 --key keys/cm-shenzhen.key
    """
    if (batch is None) == (since is None):
        fail("give exactly one of --batch ID or --since TIME")
    start = parse_time(since, "--since")
    try:
        site_key = load_private_key(key)
    except KeyFileError as exc:
        fail(str(exc))
    now = datetime.now(UTC)
    with open_db(db) as store:
        units = manifest_units(store, batch=batch, since=start)
    if not units:
        what = f"batch {batch!r}" if batch else f"--since {since}"
        fail(f"no ready units in {what}: nothing to ship, no manifest written")
    data = build_manifest(
        site_key, site=site or key.stem, units=units, batch=batch, since=start, now=now
    )
    target = out_file or Path(f"manifest-{batch or now.strftime('%Y%m%dT%H%M%SZ')}.json")
    if target.exists():
        fail(f"{target} exists already: choose another --out (a manifest is never overwritten)")
    with _written_atomically(target, binary=True, durable=True) as handle:
        handle.write(data)
    out.print(f"{target}: {len(units)} unit(s) signed with key {site_key.key_id}")


@app.command("close-batch")
def close_batch_command(
    name: str = typer.Argument(..., help="The batch (carton, shipment) name, e.g. carton-0042."),
    since: str = typer.Option(..., "--since", help="Units that became ready from this time on."),
    until: str | None = typer.Option(None, "--until", help="…and before this time."),
    db: str | None = DbOption,
) -> None:
    """Put the ready units without a batch, ready in [--since, --until), into batch NAME.

    Example: trayline export close-batch carton-0042 --since 2026-11-25T06:00
    """
    if not name.strip() or len(name) > 64:
        fail("the batch name must be 1 to 64 characters")
    start = parse_time(since, "--since")
    assert start is not None
    with open_db(db) as store:
        count = close_batch(store, name, since=start, until=parse_time(until, "--until"))
    if count == 0:
        fail(f"no ready unit without a batch in that window: batch {name} is empty", 1)
    out.print(f"batch {name}: {count} unit(s); next: trayline export manifest --batch {name}")


RowSource = Callable[..., Iterator[dict[str, Any]]]


def _export(
    kind: str,
    source: RowSource,
    fmt: str,
    since: str | None,
    batch: str | None,
    out_file: Path | None,
    db: str | None,
) -> None:
    if fmt not in ("csv", "json"):
        fail(f"--format must be csv or json, not {fmt!r}")
    start = parse_time(since, "--since")
    writer = write_csv if fmt == "csv" else write_json
    with open_db(db) as store:
        if out_file is None:
            count = _rows(writer, kind, source, store, start, batch, sys.stdout)
            return
        with _written_atomically(out_file) as handle:
            count = _rows(writer, kind, source, store, start, batch, handle)
    out.print(f"{out_file}: {count} row(s)")


def _rows(
    writer: Callable[..., int],
    kind: str,
    source: RowSource,
    store: Store,
    since: datetime | None,
    batch: str | None,
    stream: IO[Any],
) -> int:
    return writer(kind, source(store, batch=batch, since=since), stream)


FormatOption = typer.Option("csv", "--format", help="csv (a header row, UTF-8) or json.")


def _table_command(kind: str, source: RowSource, doc: str) -> None:
    """Mount ``trayline export KIND``: the tables share their options and their work.

    ``doc`` is the command's help (Typer reads the function's docstring).
    """

    def command(
        fmt: str = FormatOption,
        since: str | None = SinceOption,
        batch: str | None = BatchOption,
        out_file: Path | None = OutOption,
        db: str | None = DbOption,
    ) -> None:
        _export(kind, source, fmt, since, batch, out_file, db)

    command.__name__ = f"{kind}_command"
    command.__doc__ = doc
    app.command(kind)(command)


_table_command(
    "units",
    unit_rows,
    """One row per unit: identity, status, batch, test summary, firmware digests, parts.

    --since filters on the unit's last change.

    Example: trayline export units --format csv --batch carton-0042 --out units.csv
    """,
)
_table_command(
    "measurements",
    measurement_rows,
    """One row per measurement of every test attempt, with its limits and verdict.

    --since filters on the attempt's start.

    Example: trayline export measurements --since 2026-11-25 --out measurements.csv
    """,
)
_table_command(
    "events",
    event_rows,
    """One row per thing that happened to a unit, oldest first.

    Example: trayline export events --format json --since 2026-11-25T06:00
    """,
)

"""``trayline units``: the record of one unit, or the list of units, from the line's store."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from trayline.cli.console import fail, out
from trayline.cli.options import DbOption, open_db
from trayline.station.flow import Status
from trayline.station.record import unit_record, unit_summary
from trayline.store.units import find_unit, list_units

app = typer.Typer(
    help="Units built on the line: parts, test attempts, firmware, events.\n\n"
    "Example: trayline units show P028AB1234567890 --json",
    no_args_is_help=True,
)
EXIT_NOT_FOUND = 1
LIST_WIDTH = 80
"""``units list`` fits an 80-column terminal; ``--json`` has every field in full."""


@app.command("show")
def show_command(
    ident: str = typer.Argument(
        ..., help="Serial, device ID, ICCID, IMEI or a linked part's serial."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the record as one JSON object."),
    db: str | None = DbOption,
) -> None:
    """Show everything recorded about one unit.

    Example: trayline units show BAT-00000042 --json
    """
    with open_db(db) as store:
        unit = find_unit(store, ident)
        if unit is None:
            fail(f"no unit with serial, device ID, ICCID, IMEI or part serial {ident!r}", 1)
        record = unit_record(store, unit)
    if as_json:
        print(json.dumps(record, indent=2, default=str))
        return
    out.print(
        f"[bold]{record['serial_number']}[/bold]  {record['device_id'] or '(device ID not read)'}"
        f"  {record['sku']}  status [bold]{record['status']}[/bold]"
        + (f" — {record['reason']}" if record["reason"] else "")
    )
    for part in record["parts"]:
        out.print(f"  part {part['name']}: {part['serial']}")
    for role, fw in record["firmware"].items():
        if fw:
            out.print(f"  {role} firmware: {fw['bundle']} ({fw['digest'][:12]}…)")
    for attempt in record["attempts"]:
        out.print(
            f"  attempt {attempt['number']}: {attempt['outcome']}"
            + (f" — {attempt['reason']}" if attempt["reason"] else "")
        )
        for m in attempt["measurements"]:
            limits = f"[{m['low']}, {m['high']}]" if m["low"] is not None or m["high"] else ""
            value = f"{m['value']!s:>10} {m['unit'] or '':<4}"
            out.print(f"    {m['name']:<14} {value} {limits} {m['verdict']}")
    table = Table("at", "event", "slot", "detail", box=None, show_header=True)
    for event in record["events"]:
        table.add_row(event["at"][11:19], event["kind"], event["slot"] or "", event["detail"] or "")
    out.print(table)
    if record["cloud"]:
        out.print(f"  cloud: {record['cloud']}")


@app.command("list")
def list_command(
    status: str | None = typer.Option(
        None, "--status", help=f"Only units in this status ({', '.join(s.value for s in Status)})."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many units."),
    db: str | None = DbOption,
) -> None:
    """List units, oldest first, optionally only those in one status.

    Example: trayline units list --status failed
    """
    if status is not None and status not in {s.value for s in Status}:
        fail(f"--status must be one of {', '.join(s.value for s in Status)}, not {status!r}")
    with open_db(db) as store:
        units = list_units(store, status=status, limit=limit)
    if as_json:
        print(json.dumps([unit_summary(u) for u in units], indent=2, default=str))
        return
    status_width = max((len(u.status) for u in units), default=6)
    reason_width = max(10, LIST_WIDTH - 15 - 24 - status_width - 6)
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column("serial", no_wrap=True, width=15)
    table.add_column("device ID", no_wrap=True, width=24)
    table.add_column("status", no_wrap=True, width=status_width)
    table.add_column("reason", no_wrap=True, width=reason_width, overflow="ellipsis")
    for u in units:
        table.add_row(u.serial_number, u.device_id or "", u.status, u.reason or "")
    out.print(table)
    out.print(f"{len(units)} unit(s)")

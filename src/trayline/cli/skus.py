"""``trayline skus``: the SKU catalog, or one SKU explained."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from trayline.cli.console import fail, out
from trayline.cli.tables import id_column, new_table, print_table, text_column
from trayline.core.skus import CATALOG, UnknownSku, get_sku


def skus_command(
    sku: str | None = typer.Argument(None, help="A SKU to explain, e.g. BRN404 or B404X."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List every supported cellular SKU, or explain one.

    Examples: trayline skus · trayline skus BRN404 · trayline skus --json
    """
    if sku is not None:
        try:
            found = get_sku(sku)
        except UnknownSku as exc:
            fail(str(exc))
        if as_json:
            out.print_json(json.dumps(found.to_dict()))
            return
        info = found.to_dict()
        table = Table(title=f"{found.name}: {found.family}", show_header=False)
        for key, value in info.items():
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            table.add_row(key.replace("_", " "), shown)
        out.print(table)
        notes = []
        if found.lte_cat_m1:
            notes.append("LTE Cat M1: cannot connect at a CM in China; test in manual mode there.")
        if found.separate_sim:
            notes.append("Separate 4FF SIM: import the SIM on its own (trayline sims activate).")
        if found.setup_done_applies:
            notes.append(
                "Gen 3: set the setup-done flag on Device OS < 4.0, or it boots listening."
            )
        if found.ncp_update_applies:
            notes.append("Tracker: Device OS >= 3.0.0 needs ESP32 NCP 0.0.7 over USB serial.")
        if not found.swd:
            notes.append(f"No SWD: {found.swd_note}.")
        for note in notes:
            out.print(f"• {note}")
        return
    rows = [s.to_dict() for s in CATALOG.values()]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = new_table("Particle cellular SKUs")
    id_column(table, "SKU", 6)
    text_column(table, "family", min_width=8)
    id_column(table, "platform", 8)
    text_column(table, "radio", min_width=10)
    id_column(table, "SIM", 8)
    text_column(table, "prefixes", min_width=4)
    id_column(table, "SWD", 3)
    id_column(table, "min OS", 6)
    for s in CATALOG.values():
        table.add_row(
            s.name,
            str(s.family),
            s.platform.name,
            s.radio,
            "4FF" if s.separate_sim else "embedded",
            " ".join(s.serial_prefixes),
            "yes" if s.swd else "no",
            str(s.min_device_os),
        )
    print_table(table)

"""The tables of ``trayline firmware``: inspected modules, bundle manifests, the bundle list.

Rendering only, in the house style of :mod:`trayline.cli.tables`. At 80
columns ``inspect`` shows each file's name (its folder with ``--wide``),
platform, module, version, Device OS and the CRC verdict; ``--wide`` adds the
start address, the dependencies and the full path. Bundle listings keep names,
Device OS and dates whole and show digests in full only with ``--wide``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from trayline.cli.tables import fixed_column, id_column, new_table, text_column
from trayline.core.manifest import BundleInfo

__all__ = ["bundle_list_table", "bundle_table", "inspect_table"]


def _dep_text(dep: dict[str, int]) -> str:
    if dep["module_function"] == 0:
        return "-"
    return f"{dep['module_function']}.{dep['module_index']}>={dep['module_version']}"


def _crc(r: dict[str, Any]) -> str:
    crc = "ok" if r["crc_ok"] else "[red]BAD[/red]"
    if r["crc_ok"] and not r["sha256_ok"]:
        crc += " (SHA differs)" if not r["sha256_authoritative"] else " [red](SHA BAD)[/red]"
    return crc


def inspect_table(results: Sequence[dict[str, Any]], *, wide: bool = False) -> Table:
    """One row per inspected file (``results`` are ``firmware inspect --json`` objects)."""
    table = new_table("Particle modules")
    text_column(table, "file", min_width=16)
    id_column(table, "platform", 8)
    fixed_column(table, "module", 14)
    id_column(table, "version", 4, justify="right")
    fixed_column(table, "Device OS", 11)
    if wide:
        id_column(table, "address", 10)
        id_column(table, "deps", 9)
    fixed_column(table, "CRC", 8)
    for r in results:
        name = r["file"] if wide else Path(r["file"]).name
        if "error" in r:
            cells = [name, "", "[red]not readable (below)[/red]", "", ""]
            table.add_row(*cells, *(["", ""] if wide else []), "")
            continue
        needs = r["requires_device_os"]
        cells = [
            name,
            r["platform_name"] + (f" ({r['platform_id']})" if wide else ""),
            f"{r['module_function_name']} {r['module_index']}",
            str(r["module_version"]),
            r["device_os"] or (f"needs {needs}" if needs else ""),
        ]
        if wide:
            deps = f"{_dep_text(r['dependency'])} {_dep_text(r['dependency2'])}".strip()
            cells += [f"{r['module_start_address']:#010x}", deps]
        table.add_row(*cells, _crc(r))
    return table


def bundle_table(info: BundleInfo, *, wide: bool = False) -> Table:
    """A bundle's modules in flashing order; ``wide`` adds each file's full SHA-256."""
    table = new_table()
    id_column(table, "#", 2, justify="right")
    text_column(table, "file", min_width=16)
    text_column(table, "module", min_width=14)
    id_column(table, "address", 10)
    id_column(table, "size", 7, justify="right")
    if wide:
        id_column(table, "file SHA-256", 64)
    for e in info.entries:
        cells = [
            str(e.position + 1),
            e.file_name,
            e.label(),
            f"{e.address:#010x}" + (" (prefix dropped)" if e.skip else ""),
            str(e.size),
        ]
        table.add_row(*cells, *([e.file_sha256] if wide else []))
    return table


def bundle_list_table(bundles: Sequence[BundleInfo], *, wide: bool = False) -> Table:
    """Every stored bundle; ``wide`` adds the line, the module count and the full digest."""
    table = new_table("Firmware bundles")
    text_column(table, "name", min_width=12)
    id_column(table, "SKU", 7)
    if wide:
        id_column(table, "line", 8)
    id_column(table, "role", 10)
    id_column(table, "Device OS", 9)
    if wide:
        id_column(table, "modules", 7, justify="right")
    id_column(table, "digest", 64 if wide else 12)
    id_column(table, "created (UTC)", 16)
    for b in bundles:
        cells = [b.name, b.sku, *([b.line] if wide else []), b.role, b.device_os or "?"]
        if wide:
            cells.append(str(len(b.entries)))
        cells += [b.digest if wide else b.digest[:12], b.created_at.strftime("%Y-%m-%d %H:%M")]
        table.add_row(*cells)
    return table

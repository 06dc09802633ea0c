"""Exports a quality engineer opens in a spreadsheet: units, measurements, events.

One row per unit, per measurement (with its limits and verdict) or per event,
as CSV (a header row, UTF-8, ISO 8601 times in UTC, empty cells for nothing,
``true``/``false``) or as a JSON array of objects with the same keys. The
columns are fixed per kind (:data:`COLUMNS`), so a spreadsheet or a script
built on one export keeps working on the next, even when it is empty.

A text cell that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``@`` or ``-`` when it is not a number) is written with a leading
apostrophe: part serials come from scanners and files people bring.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

__all__ = ["COLUMNS", "KINDS", "write_csv", "write_json"]

COLUMNS: dict[str, tuple[str, ...]] = {
    "units": (
        "serial_number",
        "device_id",
        "sku",
        "iccid",
        "imei",
        "status",
        "reason",
        "batch",
        "station",
        "slot",
        "attempts",
        "first_pass",
        "last_outcome",
        "test_bundle",
        "test_digest",
        "production_bundle",
        "production_digest",
        "parts",
        "cloud_state",
        "cloud_group",
        "created_at",
        "ready_at",
        "updated_at",
    ),
    "measurements": (
        "serial_number",
        "device_id",
        "sku",
        "batch",
        "attempt",
        "attempt_outcome",
        "station",
        "slot",
        "step",
        "name",
        "value",
        "unit",
        "low",
        "high",
        "equals",
        "regex",
        "verdict",
        "reason",
        "started_at",
        "finished_at",
    ),
    "events": (
        "at",
        "serial_number",
        "device_id",
        "batch",
        "kind",
        "station",
        "slot",
        "operator",
        "detail",
    ),
}
KINDS = tuple(COLUMNS)
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _NUMBER.fullmatch(text)):
        return "'" + text
    return text


def write_csv(kind: str, rows: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    """Write a header and one line per row; the number of rows written."""
    columns = COLUMNS[kind]
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
        count += 1
    return count


def write_json(kind: str, rows: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    """Write a JSON array of objects with the kind's columns, one object per line."""
    columns = COLUMNS[kind]
    count = 0
    stream.write("[")
    for row in rows:
        stream.write(",\n" if count else "\n")
        stream.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False))
        count += 1
    stream.write("\n]\n" if count else "]\n")
    return count

"""The tables of ``trayline provision``: the report, the job list and the problems after a run.

Rendering only (:mod:`trayline.cli.tables` holds the house style). At 80
columns the report shows, per device, the input line, the full 24-character
device ID (or, when the cloud never told us one, the identifier from the
input), the state and the reason, wrapped; ``--wide`` adds the serial, the
input identifier and its kind, every step's status and the attempts.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from trayline.cli.tables import id_column, new_table, text_column
from trayline.reports.provisioning import DeviceReportRow, JobSummary

__all__ = ["problems_table", "report_table", "status_table"]

_STEPS = ("imported", "grouped", "named", "claimed", "verified")


def _device(row: DeviceReportRow) -> str:
    """The device ID when known, else what the input said (a serial, an ICCID, an IMEI)."""
    return row.device_id or row.identifier


def _reason(row: DeviceReportRow) -> str:
    if row.reason:
        return row.reason
    return (row.detail or "") if row.state != "provisioned" else ""


def report_table(title: str, rows: Sequence[DeviceReportRow], *, wide: bool = False) -> Table:
    """One row per device; see the module docstring for the columns."""
    table = new_table(title)
    id_column(table, "line", 4, justify="right")
    if wide:
        id_column(table, "input", 24)
        id_column(table, "kind", 6)
    id_column(table, "device ID" if wide else "device", 24)
    if wide:
        id_column(table, "serial", 15)
    id_column(table, "state", 11)
    if wide:
        for step in _STEPS:
            id_column(table, step, 7)
        id_column(table, "tries", 5, justify="right")
        text_column(table, "reason")
        text_column(table, "detail")
    else:
        text_column(table, "reason")
    for row in rows:
        if wide:
            table.add_row(
                str(row.line),
                row.identifier,
                row.kind,
                row.device_id or "",
                row.serial_number or "",
                row.state,
                *(getattr(row, step) for step in _STEPS),
                str(row.attempts),
                row.reason or "",
                row.detail or "",
            )
        else:
            table.add_row(str(row.line), _device(row), row.state, _reason(row))
    return table


def problems_table(rows: Sequence[DeviceReportRow]) -> Table:
    """The devices a run did not provision, as the report shows them."""
    return report_table("Devices not provisioned", rows)


def _counts(summary: JobSummary) -> str:
    return f"{summary.provisioned}/{summary.failed}/{summary.devices}"


def status_table(summaries: Sequence[JobSummary], *, wide: bool = False) -> Table:
    """One row per job. Narrow: job, product, group, status, ok/failed/all, created."""
    table = new_table("Provisioning jobs")
    id_column(table, "job", 3, justify="right")
    text_column(table, "product", min_width=8)
    text_column(table, "group", min_width=6)
    id_column(table, "status", 11)
    if wide:
        id_column(table, "devices", 7, justify="right")
        id_column(table, "provisioned", 11, justify="right")
        id_column(table, "failed", 6, justify="right")
        id_column(table, "created", 25)
        text_column(table, "account @ cloud")
        text_column(table, "input")
    else:
        id_column(table, "ok/fail/all", 11, justify="right")
        id_column(table, "created (UTC)", 16)
    for s in summaries:
        cells = [str(s.id), s.product, s.group or "", s.status]
        if wide:
            cells += [
                str(s.devices),
                str(s.provisioned),
                str(s.failed),
                s.created_at,
                f"{s.account or '?'} @ {s.api_url or '(before 0003)'}",
                s.input_path,
            ]
        else:
            cells += [_counts(s), s.created_at[:16].replace("T", " ")]
        table.add_row(*cells)
    return table

"""Exports for a quality engineer: one row per unit / measurement / event, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from outboxkit import build_line
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.outbox.exports import COLUMNS, write_csv
from trayline.store.db import Store

cli = CliRunner()


def _export(store: Store, tmp_path: Path, kind: str, *args: str) -> str:
    target = tmp_path / f"{kind}.out"
    result = cli.invoke(app, ["export", kind, "--out", str(target), "--db", store.url, *args])
    assert result.exit_code == 0, result.output
    return target.read_text(encoding="utf-8")


def test_units_measurements_events(store: Store, tmp_path: Path) -> None:
    built = build_line(store, tmp_path, ready=2, failed=1)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    closed = cli.invoke(
        app, ["export", "close-batch", "box-7", "--since", since, "--db", store.url]
    )
    assert closed.exit_code == 0 and "2 unit(s)" in closed.output, closed.output

    units = list(csv.DictReader(io.StringIO(_export(store, tmp_path, "units"))))
    assert tuple(units[0]) == COLUMNS["units"]
    by_serial = {u["serial_number"]: u for u in units}
    assert set(by_serial) == set(built.ready + built.failed)
    good, bad = by_serial[built.ready[0]], by_serial[built.failed[0]]
    assert good["status"] == "ready" and good["batch"] == "box-7" and good["first_pass"] == "true"
    assert good["production_digest"] and "battery=BAT-" in good["parts"]
    assert datetime.fromisoformat(good["ready_at"]).tzinfo is not None
    assert bad["status"] == "failed" and bad["reason"] and bad["batch"] == ""
    assert bad["first_pass"] == "false" and bad["last_outcome"] == "fail"

    rows = list(csv.DictReader(io.StringIO(_export(store, tmp_path, "measurements"))))
    assert tuple(rows[0]) == COLUMNS["measurements"]
    low = [r for r in rows if r["serial_number"] == built.failed[0]]
    assert low and low[0]["name"] == "vbat" and float(low[0]["value"]) == 3.0
    assert (low[0]["low"], low[0]["high"], low[0]["verdict"]) == ("3.6", "4.3", "fail")
    assert all(r["verdict"] == "pass" for r in rows if r["serial_number"] in built.ready)

    batch_only = list(
        csv.DictReader(io.StringIO(_export(store, tmp_path, "measurements", "--batch", "box-7")))
    )
    assert {r["serial_number"] for r in batch_only} == set(built.ready)

    events = json.loads(_export(store, tmp_path, "events", "--format", "json"))
    assert set(events[0]) == set(COLUMNS["events"])
    kinds = [e["kind"] for e in events if e["serial_number"] == built.ready[0]]
    assert kinds[0] == "scanned" and kinds[-1] == "ready"

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = _export(store, tmp_path, "units", "--since", future)
    assert empty.splitlines() == [",".join(COLUMNS["units"])]


def test_csv_cells_a_spreadsheet_would_run_are_quoted() -> None:
    stream = io.StringIO()
    rows = [{"serial_number": "=HYPERLINK(1)", "device_id": "-2+3", "sku": "-1.5", "iccid": None}]
    write_csv("units", rows, stream)
    line = next(iter(csv.DictReader(io.StringIO(stream.getvalue()))))
    assert line["serial_number"] == "'=HYPERLINK(1)" and line["device_id"] == "'-2+3"
    assert line["sku"] == "-1.5" and line["iccid"] == ""


def test_bad_time_is_one_line(tmp_path: Path) -> None:
    result = cli.invoke(
        app, ["export", "units", "--since", "yesterday", "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    )
    assert result.exit_code == 2 and "--since 'yesterday'" in result.output


def test_unit_rows_page_through_the_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import trayline.store.exports as exports
    from trayline.store.units import EventContext, link_part, register_unit

    ctx = EventContext("st1")
    serials = [f"P028PAG{n:08d}" for n in range(7)]
    for serial in serials:
        unit, _ = register_unit(store, serial, sku="BRN404", ctx=ctx)
        link_part(store, unit.id, "battery", f"BAT-{serial[-4:]}", unique=False, ctx=ctx)
    monkeypatch.setattr(exports, "CHUNK", 2)
    rows = list(exports.unit_rows(store))
    assert [r["serial_number"] for r in rows] == serials
    assert all(r["parts"] == f"battery=BAT-{r['serial_number'][-4:]}" for r in rows)

"""``provision report`` and ``provision status`` read well in 80 columns (issue 8 §7).

The job here is written straight into a store through the jobs repository (no
cloud needed), then the real command runs in a subprocess with ``COLUMNS=80``,
as in a pipe or a narrow terminal. The report's example in docs/provisioning.md
is this very output: the test compares them, so the docs cannot drift.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trayline.store.db import open_store
from trayline.store.jobs import create_job

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "provisioning.md"

DEVICES = [
    # line, identifier, kind, device ID, serial, steps (imp, grp, name, claim, verify), failure
    (
        2,
        "e00fce681c2b4ad2a5c6f1d1",
        "device ID",
        "e00fce681c2b4ad2a5c6f1d1",
        "P028AB1234567XY",
        ("done",) * 5,
        None,
    ),
    (
        3,
        "P028AB1234567XZ",
        "serial",
        "e00fce68a0b1c2d3e4f5a6b7",
        "P028AB1234567XZ",
        ("done",) * 5,
        None,
    ),
    (
        4,
        "e00fce68ffeeddccbbaa9988",
        "device ID",
        "e00fce68ffeeddccbbaa9988",
        None,
        ("failed", "pending", "pending", "pending", "pending"),
        "platform-mismatch",
    ),
    (
        5,
        "e00fce680011223344556677",
        "device ID",
        "e00fce680011223344556677",
        None,
        ("done", "done", "pending", "pending", "pending"),
        None,
    ),
    (
        6,
        "P028ZZ9999999QQ",
        "serial",
        None,
        "P028ZZ9999999QQ",
        ("failed", "pending", "pending", "pending", "pending"),
        "unknown-id",
    ),
]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'line.db'}"
    job = {
        "key": "k" * 64,
        "api_url": "http://127.0.0.1:8080",
        "account": "line-a@example.com",
        "product": "acme-trackers",
        "group_name": "tray-07",
        "input_path": "tray-07.csv",
        "status": "incomplete",
    }
    rows = [
        {
            "line_no": line,
            "identifier": ident,
            "id_kind": kind,
            "device_id": device_id,
            "serial_number": serial,
            "imported": steps[0],
            "grouped": steps[1],
            "named": steps[2],
            "claimed": steps[3],
            "verified": steps[4],
            "attempts": 1,
            "failure": failure,
            "last_error": "HTTP 502 from the cloud; will retry"
            if failure is None and steps[4] != "done"
            else None,
        }
        for line, ident, kind, device_id, serial, steps, failure in DEVICES
    ]
    with open_store(url) as store:
        create_job(store, job, rows, {"kind": "job-created", "message": "test", "data": {}})
    return url


def _trayline(db_url: str, *args: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "TRAYLINE_DATABASE_URL": db_url, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "trayline", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"\$ COLUMNS=80 trayline provision report 1\n(.*?)```", text, flags=re.DOTALL)
    assert match, "docs/provisioning.md lost its COLUMNS=80 report example"
    return match.group(1)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


def test_report_shows_every_full_device_id_and_state_in_80_columns(db_url: str) -> None:
    text = _trayline(db_url, "provision", "report", "1")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    for line_no, ident, _, device_id, _, steps, failure in DEVICES:
        shown = device_id or ident
        row = next((ln for ln in lines if re.match(rf"\s*{line_no}\s+{shown}\s", ln)), None)
        assert row is not None, f"line {line_no}: {shown} not shown whole:\n{text}"
        state = "failed" if failure else ("provisioned" if steps[4] == "done" else "incomplete")
        assert f" {state}" in row
    assert "platform does not match the product" in text
    assert "(e.g. a Boron into a B-SoM product)" in " ".join(ln.strip() for ln in lines)


def test_the_docs_example_is_this_output(db_url: str) -> None:
    assert _lines(_trayline(db_url, "provision", "report", "1")) == _lines(_docs_example())


def test_wide_shows_every_column(db_url: str) -> None:
    text = _trayline(db_url, "provision", "report", "1", "--wide")
    assert max(len(line) for line in text.splitlines()) > 80
    header = text.splitlines()[1].split()
    for column in ("input", "kind", "serial", "imported", "verified", "tries", "detail"):
        assert column in header
    assert "P028AB1234567XY" in text and "HTTP 502 from the cloud; will retry" in text


def test_status_fits_80_columns_and_wide_adds_the_cloud(db_url: str) -> None:
    text = _trayline(db_url, "provision", "status")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert re.search(
        r"\b1\s+acme-trackers\s+tray-07\s+incomplete\s+2/2/5\s+\d{4}-\d\d-\d\d \d\d:\d\d", text
    )
    wide = _trayline(db_url, "provision", "status", "--wide")
    assert "line-a@example.com @ http://127.0.0.1:8080" in wide and "tray-07.csv" in wide


def test_csv_and_json_keep_every_field(db_url: str) -> None:
    csv_text = _trayline(db_url, "provision", "report", "1", "--format", "csv")
    assert csv_text.splitlines()[0] == (
        "line,identifier,kind,device_id,serial_number,state,imported,grouped,named,"
        "claimed,verified,attempts,reason,detail"
    )
    assert len(csv_text.splitlines()) == 1 + len(DEVICES)
    json_text = _trayline(db_url, "provision", "report", "1", "--format", "json")
    assert json_text.count('"identifier"') == len(DEVICES)

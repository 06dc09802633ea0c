"""What the API and pages say about units: the same record as `units show --json`, search,
genealogy, yield, CSV exports that stay text in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from webkit import add_users, build_app, client_for, login

from station.linekit import World
from trayline.cli.app import app as cli
from trayline.store.db import open_store


@pytest.fixture
def built(sqlite_url: str, tmp_path: Path) -> Any:
    """Two units through the web station: one passes, one fails; an engineer's client."""
    store = open_store(sqlite_url)
    add_users(store)
    world = World()
    good, bad = world.add(1), world.add(2, readings={"vbat": 3.0})
    app = build_app(store, tmp_path, world)
    with client_for(app) as client:
        csrf = login(client, "engineer")
        for scan in (good, "BAT-000001", "ENC-000001", bad, "BAT-000002", "=ENC-000002"):
            client.post(
                "/api/stations/st1/scan", json={"scan": scan}, headers={"x-csrf-token": csrf}
            )
        client.post(
            "/api/stations/st1/scan", json={"scan": "ENC-000002"}, headers={"x-csrf-token": csrf}
        )
        assert app.state.hub.get("st1").runner.wait_idle(timeout=60)
        yield client, sqlite_url, good, bad
    store.dispose()


def test_the_unit_api_is_the_units_show_json_object(built: Any) -> None:
    client, url, good, _ = built
    api = client.get(f"/api/units/{good}").json()
    shown = CliRunner().invoke(cli, ["units", "show", good, "--json", "--db", url])
    assert shown.exit_code == 0, shown.output
    assert api == json.loads(shown.output)
    assert client.get("/api/units/BAT-000001").json()["serial_number"] == good
    missing = client.get("/api/units/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]


def test_the_unit_page_shows_timeline_parts_measurements_and_firmware(built: Any) -> None:
    client, _url, _good, bad = built
    page = client.get(f"/units/{bad}").text
    for text in (
        "battery",
        "BAT-000002",
        "vbat",
        "3.6",
        "4.3",
        "brn404-test",
        "Timeline",
        "scanned",
    ):
        assert text in page, text
    assert 'class="fail"' in page
    assert client.get("/units/NOPE").status_code == 404


def test_search_by_a_part_serial_opens_the_unit(built: Any) -> None:
    client, _url, good, _ = built
    reply = client.get("/search?q=ENC-000001", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == f"/units/{good}"
    listing = client.get("/search?q=P028LAB").text
    assert good in listing and "P028LAB00000002" in listing
    api = client.get("/api/search?q=ENC-000001").json()
    assert api["parts_total"] == 1 and api["parts"][0]["unit"]["serial_number"] == good


def test_units_list_yield_and_jobs(built: Any) -> None:
    client, _url, good, bad = built
    page = client.get("/api/units?limit=1").json()
    assert [u["serial_number"] for u in page["units"]] == [good] and page["next"]
    after = client.get(f"/api/units?after={page['next']}").json()
    assert [u["serial_number"] for u in after["units"]] == [bad] and after["next"] is None
    assert (
        client.get("/api/units?status=failed&since=1d").json()["units"][0]["serial_number"] == bad
    )
    assert client.get("/api/units?since=yesterday").status_code == 422
    days = client.get("/api/yield").json()["periods"]
    assert sum(p["ready"] for p in days) == 1 and sum(p["failed"] for p in days) == 1
    assert days[-1]["final_yield"] == 0.5
    assert client.get("/api/jobs").json() == []
    dash = client.get("/").text
    assert "50.0 %" in dash and "<svg" in dash


def test_csv_exports_keep_cells_as_text(built: Any) -> None:
    client, _url, good, bad = built
    units = list(csv.DictReader(io.StringIO(client.get("/api/export/units.csv").text)))
    assert [u["serial_number"] for u in units] == [good, bad]
    assert units[1]["status"] == "failed"
    reply = client.get("/api/export/measurements.csv?days=1")
    assert reply.headers["content-disposition"] == 'attachment; filename="measurements.csv"'
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert {r["name"] for r in rows} == {"vbat"} and {r["verdict"] for r in rows} == {
        "pass",
        "fail",
    }
    assert client.get("/api/export/jobs/7.csv").status_code == 404


def test_a_formula_in_a_cell_stays_text() -> None:
    from trayline.web.routes.exports import _csv

    text = "".join(_csv(("a", "b"), [("=HYPERLINK(1)", "-3"), (None, "ok")]))
    assert text.splitlines() == ["a,b", "'=HYPERLINK(1),'-3", ",ok"]


def test_a_provisioning_job_page_and_report(built: Any) -> None:
    client, url, _good, _bad = built
    from test_web_queries import _job

    store = open_store(url)
    job_id = _job(store)
    store.dispose()
    page = client.get(f"/jobs/{job_id}").text
    assert "2 of 4 provisioned" in page and "1 failed" in page and "1 to do" in page
    assert "unknown to the Particle Cloud" in page and "404 from the cloud" in page
    assert f'href="/jobs/{job_id}"' in client.get("/").text
    report = list(csv.DictReader(io.StringIO(client.get(f"/api/export/jobs/{job_id}.csv").text)))
    assert len(report) == 4 and report[3]["state"] == "failed"
    assert client.get(f"/jobs/{job_id + 1}").status_code == 404
    assert client.get("/api/jobs").json()[0]["remaining"] == 1

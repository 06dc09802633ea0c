"""The station page drives the station runner: scans, PASS/FAIL, the reason, YES/NO prompts,
live updates over server-sent events."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from webkit import PROMPT_CONFIG, add_users, build_app, client_for, login

from station.linekit import World
from trayline.store.db import open_store
from trayline.store.units import find_unit, unit_events

JSON = {"accept": "application/json"}


@pytest.fixture
def world() -> World:
    return World()


def _open(sqlite_url: str, tmp_path: Path, world: World, config: str | None = None) -> Any:
    store = open_store(sqlite_url)
    add_users(store)
    app = build_app(store, tmp_path, world, config) if config else build_app(store, tmp_path, world)
    return store, app


def _scan(client: Any, csrf: str, *lines: str) -> list[dict[str, str]]:
    out = []
    for line in lines:
        reply = client.post(
            "/station/st1/scan", data={"scan": line, "csrf_token": csrf}, headers=JSON
        )
        assert reply.status_code == 200, reply.text
        out.append(reply.json())
    return out


def _idle(app: Any) -> None:
    assert app.state.hub.get("st1").runner.wait_idle(timeout=60)


def test_a_scanned_unit_reaches_pass_on_the_page(
    sqlite_url: str, tmp_path: Path, world: World
) -> None:
    store, app = _open(sqlite_url, tmp_path, world)
    serial = world.add(1)
    with client_for(app) as client:
        csrf = login(client, "operator")
        notices = _scan(client, csrf, serial + " mobilesecret99", "BAT-000001", "ENC-000001")
        assert "scan battery, enclosure" in notices[0]["text"]
        _idle(app)
        page = client.get("/station/st1").text
        snap = client.get("/api/stations").json()[0]
    slot = next(s for s in snap["slots"] if s["serial"] == serial)
    assert slot["state"] == "pass"
    assert 'class="slot pass"' in page and ">PASS<" in page
    assert "mobilesecret99" not in page and "mobilesecret99" not in json.dumps(snap)
    unit = find_unit(store, serial)
    assert unit is not None and unit.status == "ready"
    scanned = [e for e in unit_events(store, unit.id) if e.kind in ("scanned", "part_linked")]
    assert {e.operator for e in scanned} == {"operator"}  # the logged-in user who scanned
    store.dispose()


def test_a_failing_unit_shows_its_reason(sqlite_url: str, tmp_path: Path, world: World) -> None:
    store, app = _open(sqlite_url, tmp_path, world)
    serial = world.add(2, readings={"vbat": 3.1})
    with client_for(app) as client:
        csrf = login(client, "operator")
        _scan(client, csrf, serial, "BAT-000002", "ENC-000002")
        _idle(app)
        page = client.get("/station/st1").text
    assert 'class="slot fail"' in page and ">FAIL<" in page
    reason = find_unit(store, serial).reason  # type: ignore[union-attr]
    assert reason and "vbat" in reason
    assert reason.split(":")[0] in page
    store.dispose()


def _wait_prompt(client: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        snap: dict[str, Any] = client.get("/api/stations").json()[0]
        if snap["prompts"]:
            return snap
        time.sleep(0.05)
    raise AssertionError("no prompt appeared")


@pytest.mark.parametrize(("answer", "status"), [("yes", "ready"), ("no", "failed")])
def test_a_prompt_is_answered_with_the_button(
    sqlite_url: str, tmp_path: Path, world: World, answer: str, status: str
) -> None:
    store, app = _open(sqlite_url, tmp_path, world, PROMPT_CONFIG)
    serial = world.add(3)
    with client_for(app) as client:
        csrf = login(client, "operator")
        _scan(client, csrf, serial, "BAT-000003", "ENC-000003")
        snap = _wait_prompt(client)
        assert snap["prompts"][0]["text"] == "Is the status LED green?"
        page = client.get("/station/st1").text
        assert 'value="yes" class="yes">YES</button>' in page
        reply = client.post(
            "/station/st1/answer", data={"answer": answer, "csrf_token": csrf}, headers=JSON
        )
        assert reply.json()["text"] == f"answer {answer.upper()} given"
        _idle(app)
        late = client.post(
            "/station/st1/answer", data={"answer": "yes", "csrf_token": csrf}, headers=JSON
        )
        assert late.json()["text"] == "no question is waiting"
    unit = find_unit(store, serial)
    assert unit is not None and unit.status == status
    if status == "failed":
        assert "operator answered no" in (unit.reason or "")
    store.dispose()


def test_live_updates_carry_the_rendered_cards(
    sqlite_url: str, tmp_path: Path, world: World
) -> None:
    store, app = _open(sqlite_url, tmp_path, world)
    serial = world.add(4)
    with client_for(app) as client:
        csrf = login(client, "operator")
        _scan(client, csrf, serial, "BAT-000004", "ENC-000004")
        _idle(app)
        reply = client.get("/station/st1/events?once=true")
    assert reply.headers["content-type"].startswith("text/event-stream")
    event, data = reply.text.strip().split("\n", 1)
    assert event == "event: state"
    parts = json.loads(data.removeprefix("data: "))
    assert set(parts) == {"slots", "prompts", "notices"}
    assert serial in parts["slots"] and "PASS" in parts["slots"]
    assert f"{serial} PASS on" in parts["notices"]
    store.dispose()


def test_without_javascript_a_scan_posts_and_comes_back(
    sqlite_url: str, tmp_path: Path, world: World
) -> None:
    store, app = _open(sqlite_url, tmp_path, world)
    with client_for(app) as client:
        csrf = login(client, "operator")
        reply = client.post(
            "/station/st1/scan", data={"scan": "hello", "csrf_token": csrf}, follow_redirects=False
        )
        assert reply.status_code == 303 and reply.headers["location"] == "/station/st1"
        assert "unknown scan" in client.get("/station/st1").text
        missing = client.get("/station/nope")
        assert missing.status_code == 404 and "no station &#39;nope&#39;" in missing.text
        assert missing.headers["content-type"].startswith("text/html")
    store.dispose()


def test_an_admin_stops_and_starts_the_station(
    sqlite_url: str, tmp_path: Path, world: World
) -> None:
    store, app = _open(sqlite_url, tmp_path, world)
    with client_for(app) as client:
        csrf = login(client, "admin")
        for _ in range(3):  # a stopped station starts again, as often as asked
            client.post("/admin/stations/st1/stop", data={"csrf_token": csrf})
            assert "This station is stopped" in client.get("/station/st1").text
            client.post("/admin/stations/st1/start", data={"csrf_token": csrf})
            assert client.get("/api/stations").json()[0]["running"] is True
        serial = world.add(5)
        for scan in (serial, "BAT-000005", "ENC-000005"):
            client.post("/station/st1/scan", data={"scan": scan, "csrf_token": csrf})
        _idle(app)
        assert find_unit(store, serial).status == "ready"  # type: ignore[union-attr]
    store.dispose()

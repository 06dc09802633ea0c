"""Who drove the station from the web: the signed-in user's name is on every event of the
unit they scanned — the scan's own and the slot worker's — and survives a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from webkit import (
    PROMPT_CONFIG,
    SECRET,
    add_users,
    build_app,
    client_for,
    login,
    make_handle,
    password_hash,
)

from station.linekit import World, make_bundles
from trayline.store.db import Store, open_store
from trayline.store.units import find_unit, for_threads, unit_events
from trayline.store.users import add_token, add_user
from trayline.web.access import new_token, token_digest
from trayline.web.app import create_app
from trayline.web.stations import StationHub

JSON = {"accept": "application/json"}


def _slot_events(store: Store, serial: str) -> list[Any]:
    unit = find_unit(store, serial)
    assert unit is not None
    events = unit_events(store, unit.id)
    assert any(e.slot for e in events), [e.kind for e in events]
    return events


def _idle(app: Any) -> None:
    assert app.state.hub.get("st1").runner.wait_idle(timeout=60)


def test_the_signed_in_operator_is_on_the_slot_workers_events(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    add_users(store)
    add_user(store, "alice", "operator", password_hash())
    world = World()
    app = build_app(store, tmp_path, world)  # the runner's own operator is "op"
    serial = world.add(21)
    with client_for(app) as client:
        csrf = login(client, "alice")
        for line in (serial, "BAT-000021", "ENC-000021"):
            reply = client.post(
                "/station/st1/scan", data={"scan": line, "csrf_token": csrf}, headers=JSON
            )
            assert reply.status_code == 200, reply.text
        _idle(app)
    events = _slot_events(store, serial)
    assert find_unit(store, serial).status == "ready"  # type: ignore[union-attr]
    assert {e.operator for e in events} == {"alice"}, [(e.kind, e.operator) for e in events]
    store.dispose()


def test_two_users_each_on_their_own_unit_through_the_api(sqlite_url: str, tmp_path: Path) -> None:
    store = open_store(sqlite_url)
    add_users(store)
    tokens = {}
    for name in ("alice", "bob"):
        add_user(store, name, "operator", password_hash())
        tokens[name] = new_token()
        add_token(store, name, token_digest(tokens[name]))
    world = World()
    # as trayline serve builds it: the runner over the store its slot threads share (on SQLite
    # their sessions take turns), the app over the store as opened
    make_bundles(store, tmp_path / "bundles")
    hub = StationHub([make_handle(for_threads(store), tmp_path, world)])
    app = create_app(store, secret=SECRET, hub=hub)
    serials = {"alice": world.add(31), "bob": world.add(32)}
    with client_for(app) as client:
        # bob scans his unit in while alice's waits for (or sits in) a slot
        for name, number in (("alice", 31), ("bob", 32)):
            for line in (serials[name], f"BAT-0000{number}", f"ENC-0000{number}"):
                reply = client.post(
                    "/api/stations/st1/scan",
                    json={"scan": line},
                    headers={"authorization": f"Bearer {tokens[name]}"},
                )
                assert reply.status_code == 200, reply.text
                assert reply.json()["level"] != "error", reply.json()
        _idle(app)
    for name, serial in serials.items():
        operators = {e.operator for e in _slot_events(store, serial)}
        assert operators == {name}, (serial, operators)
    store.dispose()


def test_a_restarted_station_keeps_its_tray_prompts_and_operator(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    add_users(store)
    add_user(store, "alice", "admin", password_hash())
    world = World()
    app = build_app(store, tmp_path, world, PROMPT_CONFIG)
    first = app.state.hub.get("st1").runner
    serial = world.add(41)
    with client_for(app) as client:
        csrf = login(client, "alice")
        client.post("/admin/stations/st1/stop", data={"csrf_token": csrf})
        client.post("/admin/stations/st1/start", data={"csrf_token": csrf})
        assert app.state.hub.get("st1").runner is not first
        for line in (serial, "BAT-000041", "ENC-000041"):
            client.post("/station/st1/scan", data={"scan": line, "csrf_token": csrf})
        deadline = time.monotonic() + 30
        while not client.get("/api/stations").json()[0]["prompts"]:
            if time.monotonic() > deadline:  # a hang guard, not a speed check
                pytest.fail("no prompt appeared in 30 s after the restart")
            time.sleep(0.05)
        reply = client.post(
            "/station/st1/answer", data={"answer": "yes", "csrf_token": csrf}, headers=JSON
        )
        assert reply.json()["text"] == "answer YES given"
        _idle(app)
    assert find_unit(store, serial).status == "ready"  # type: ignore[union-attr]
    assert {e.operator for e in _slot_events(store, serial)} == {"alice"}
    store.dispose()

"""A line, a station and logged-in clients for the web tests.

The station runs fake boards (tests/station/linekit): the same runner, worker
and front as ``trayline station run``, with programmers and test channels
answering from memory. ``PROMPT_CONFIG`` adds an operator question to the test
plan, answered through the :class:`QueuedPrompts` the web page drives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from station.linekit import CONFIG, World, make_bundles, make_line
from trayline.station.plantester import plan_tester
from trayline.station.prompts import QueuedPrompts
from trayline.station.runner import Runner
from trayline.station.worker import UnitWork
from trayline.store.db import Store
from trayline.store.users import add_user
from trayline.web.access import hash_password
from trayline.web.app import create_app
from trayline.web.stations import StationHandle, StationHub

SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"
ROLES = ("operator", "engineer", "admin")
PROMPT_CONFIG = CONFIG.replace(
    "[slots.A]",
    """[[test_plan.steps]]
name = "led"
kind = "prompt"
text = "Is the status LED green?"
timeout_s = 60

[slots.A]""",
)


def make_handle(store: Store, tmp_path: Path, world: World, config: str = CONFIG) -> StationHandle:
    """The station ``st1`` over fake boards, with a web-answered prompt queue."""
    (tmp_path / "line").mkdir(exist_ok=True)
    line = make_line(tmp_path / "line", config)
    queued = QueuedPrompts()
    work = UnitWork(
        store=store,
        config=line.config,
        owner="st1/web-test/1/x",
        operator="op",
        tester=plan_tester(line, world.channel, prompts=queued),
        opener=world.open,
        locate=world.locate,
    )
    return StationHandle(
        line.config.station, Runner(work, tray=world.tray, answer=queued.answer), queued
    )


_HASHED: list[str] = []


def password_hash() -> str:
    """One argon2 hash of :data:`PASSWORD`, made once (argon2 is slow on purpose)."""
    if not _HASHED:
        _HASHED.append(hash_password(PASSWORD))
    return _HASHED[0]


def add_users(store: Store) -> None:
    for role in ROLES:
        add_user(store, role, role, password_hash())


def build_app(
    store: Store, tmp_path: Path, world: World | None = None, config: str = CONFIG
) -> FastAPI:
    make_bundles(store, tmp_path / "bundles")
    hub = StationHub([make_handle(store, tmp_path, world or World(), config)])
    return create_app(store, secret=SECRET, hub=hub)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: TestClient, path: str = "/login") -> str:
    match = _CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log ``client`` in as ``name``; the session's CSRF token."""
    token = csrf_of(client)
    reply = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text[:300]
    return csrf_of(client, "/station/st1")


@contextmanager
def client_for(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client

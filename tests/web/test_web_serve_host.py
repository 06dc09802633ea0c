"""``trayline serve --host`` as docs/web.md says: any address but loopback is refused until an
enabled user exists; local mode (no users, loopback) lets in only requests addressed to a
loopback name that no proxy relayed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from webkit import PASSWORD, SECRET, client_for

from trayline.cli.app import app
from trayline.store.db import open_store
from trayline.store.users import add_user, set_disabled
from trayline.web.access import hash_password
from trayline.web.app import create_app

runner = CliRunner()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "lab-pc", "::ffff:127.0.0.1"])
def test_a_network_address_is_refused_without_users(sqlite_url: str, host: str) -> None:
    result = runner.invoke(app, ["serve", "--host", host, "--port", "0", "--db", sqlite_url])
    assert result.exit_code == 2, result.output
    assert "would open the line to the network with no users" in result.output
    assert "trayline users add NAME --role admin" in result.output


def test_a_disabled_user_does_not_count(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    add_user(store, "gone", "admin", hash_password(PASSWORD))
    set_disabled(store, "gone", True)
    store.dispose()
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0", "--db", sqlite_url])
    assert result.exit_code == 2 and "no users" in result.output


def test_with_a_user_a_network_address_is_taken(sqlite_url: str, tmp_path: Path) -> None:
    """Past the users check it goes on to listen; 192.0.2.1 (TEST-NET-1) is no address of this
    machine, so the bind fails there and nothing is opened to any network."""
    store = open_store(sqlite_url)
    add_user(store, "ann", "admin", hash_password(PASSWORD))
    store.dispose()
    result = runner.invoke(app, ["serve", "--host", "192.0.2.1", "--port", "0", "--db", sqlite_url])
    assert result.exit_code == 2, result.output
    assert "cannot listen on 192.0.2.1:0" in result.output
    assert "no users" not in result.output


@pytest.mark.parametrize(
    ("headers", "local"),
    [
        ({}, True),
        ({"host": "localhost:8080"}, True),
        ({"host": "[::1]:8080"}, True),
        ({"host": "evil.example"}, False),  # a page that rebound its name to 127.0.0.1
        ({"host": "evil.example:8080"}, False),
        ({"x-forwarded-for": "203.0.113.9"}, False),  # a reverse proxy in front
        ({"forwarded": "for=203.0.113.9"}, False),
        ({"x-real-ip": "203.0.113.9"}, False),
    ],
)
def test_local_mode_is_for_this_machine_only(
    sqlite_url: str, headers: dict[str, str], local: bool
) -> None:
    store = open_store(sqlite_url)
    web = create_app(store, secret=SECRET, open_local=True)
    with client_for(web) as client:
        reply = client.get("/api/units", headers=headers)
    assert reply.status_code == (200 if local else 401), reply.text
    store.dispose()

"""Failed sign-ins are limited per user name and per client address: past the limit the login
answers 429 without running argon2, until the window has passed (an injected clock, no sleeps)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webkit import PASSWORD, SECRET, add_users, client_for, csrf_of, password_hash

import trayline.web.routes.auth as auth_routes
from trayline.store.db import open_store
from trayline.store.users import add_user
from trayline.web.access import SignInLimit
from trayline.web.app import create_app

WINDOW = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names whose password was checked (argon2 ran)."""
    seen: list[str] = []
    real = auth_routes.check_password

    def counting(store: Any, name: str, password: str) -> Any:
        seen.append(name)
        return real(store, name, password)

    monkeypatch.setattr(auth_routes, "check_password", counting)
    return seen


@pytest.fixture
def client(sqlite_url: str, clock: Clock) -> Iterator[Any]:
    store = open_store(sqlite_url)
    add_users(store)
    for name in ("alice", "bob"):
        add_user(store, name, "operator", password_hash())
    limit = SignInLimit(per_name=5, per_address=20, window_s=WINDOW, clock=clock)
    app = create_app(store, secret=SECRET, signin_limit=limit)
    with client_for(app) as c:
        yield c
    store.dispose()


def _sign_in(client: Any, name: str, password: str) -> Any:
    client.cookies.clear()
    token = csrf_of(client)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )


def test_five_failures_refuse_the_right_password_until_the_window_passes(
    client: Any, clock: Clock, verified: list[str]
) -> None:
    for _ in range(5):
        clock.now += 10
        assert _sign_in(client, "alice", "wrong password").status_code == 401
    assert len(verified) == 5
    refused = _sign_in(client, "alice", PASSWORD)
    assert refused.status_code == 429
    # the first failure was at 1010, the window is 300 s, now is 1050: 260 s to go
    assert "too many failed sign-ins; try again in 260 s" in refused.text
    assert refused.headers["retry-after"] == "260"
    assert len(verified) == 5  # argon2 did not run for the refused attempt
    clock.now += 259
    assert _sign_in(client, "alice", PASSWORD).status_code == 429
    assert len(verified) == 5
    clock.now += 1  # the oldest failure leaves the window: one more try is allowed
    reply = _sign_in(client, "alice", PASSWORD)
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    assert client.get("/api/stations").status_code == 200  # signed in


def test_the_limit_is_per_name_and_case_does_not_dodge_it(
    client: Any, clock: Clock, verified: list[str]
) -> None:
    for _ in range(5):
        assert _sign_in(client, "alice", "wrong password").status_code == 401
    assert _sign_in(client, "ALICE", "wrong password").status_code == 429
    assert _sign_in(client, "bob", PASSWORD).status_code == 303  # another name is not held up
    assert _sign_in(client, "alice", PASSWORD).status_code == 429  # bob's success resets nothing
    assert verified == ["alice"] * 5 + ["bob"]


def test_a_success_clears_its_own_name(client: Any, clock: Clock) -> None:
    for _ in range(4):
        assert _sign_in(client, "alice", "wrong password").status_code == 401
    assert _sign_in(client, "alice", PASSWORD).status_code == 303
    for _ in range(4):  # four more failures: not five since the success
        assert _sign_in(client, "alice", "wrong password").status_code == 401
    assert _sign_in(client, "alice", PASSWORD).status_code == 303


def test_one_address_guessing_many_names_is_stopped(
    client: Any, clock: Clock, verified: list[str]
) -> None:
    for i in range(20):
        assert _sign_in(client, f"guess{i}", "wrong password").status_code == 401
    reply = _sign_in(client, "bob", PASSWORD)  # from the same address (the test client)
    assert reply.status_code == 429 and "too many failed sign-ins" in reply.text
    assert len(verified) == 20
    clock.now += WINDOW
    assert _sign_in(client, "bob", PASSWORD).status_code == 303


def test_the_counts_stay_bounded() -> None:
    clock = Clock()
    limit = SignInLimit(clock=clock)
    limit.MAX_KEYS = 100
    for i in range(500):
        limit.failed(f"name{i}", f"10.0.{i // 250}.{i % 250}")
        clock.now += 0.01
    assert len(limit._failures) <= 100
    assert limit.wait("name499", "10.0.1.249") == 0  # one failure is below every limit


def test_the_default_limit_is_in_the_app(sqlite_url: str, tmp_path: Path) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, secret=SECRET)
    assert isinstance(app.state.signin_limit, SignInLimit)
    assert app.state.signin_limit.limits == {"name": 5, "address": 20}
    store.dispose()

"""Every route for every role: no session → 401 (API) or the login page (HTML); a role too low
→ 403; an unsafe request without its CSRF token → 403 and nothing done; API tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from webkit import PASSWORD, SECRET, add_users, build_app, client_for, csrf_of, login

from trayline.store.db import Store, open_store
from trayline.store.users import add_token, find_user, list_users
from trayline.web.access import hash_password, rank, token_digest
from trayline.web.app import create_app

# (method, path, least role, body kind, body)
ROUTES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("GET", "/", "operator", "", {}),
    ("GET", "/units/P028LAB00000001", "operator", "", {}),
    ("GET", "/units?status=ready", "operator", "", {}),
    ("GET", "/jobs/1", "operator", "", {}),
    ("GET", "/search?q=BAT-000001", "operator", "", {}),
    ("GET", "/station", "operator", "", {}),
    ("GET", "/station/st1", "operator", "", {}),
    ("GET", "/station/st1/events?once=true", "operator", "", {}),
    ("GET", "/api/units/P028LAB00000001", "operator", "", {}),
    ("GET", "/api/units?limit=5", "operator", "", {}),
    ("GET", "/api/search?q=BAT-000001", "operator", "", {}),
    ("GET", "/api/yield?by=shift", "operator", "", {}),
    ("GET", "/api/stations", "operator", "", {}),
    ("GET", "/api/jobs", "operator", "", {}),
    ("GET", "/api/export/units.csv", "engineer", "", {}),
    ("GET", "/api/export/measurements.csv?days=2", "engineer", "", {}),
    ("GET", "/api/export/jobs/1.csv", "engineer", "", {}),
    ("GET", "/admin/users", "admin", "", {}),
    ("POST", "/station/st1/scan", "operator", "form", {"scan": "hello"}),
    ("POST", "/station/st1/answer", "operator", "form", {"answer": "no"}),
    ("POST", "/api/stations/st1/scan", "operator", "json", {"scan": "hello"}),
    ("POST", "/api/stations/st1/answer", "operator", "json", {"yes": False}),
    (
        "POST",
        "/admin/users",
        "admin",
        "form",
        {"name": "zed", "role": "operator", "password": "pw-long-enough"},
    ),
    ("POST", "/admin/users/operator/role", "admin", "form", {"role": "operator"}),
    ("POST", "/admin/users/operator/enabled", "admin", "form", {"enabled": "yes"}),
    ("POST", "/admin/users/engineer/token", "admin", "form", {"label": "t"}),
    ("POST", "/admin/stations/st1/start", "admin", "form", {}),
]
IDS = [f"{m} {p}" for m, p, *_ in ROUTES]


@pytest.fixture
def web(sqlite_url: str, tmp_path: Path) -> Any:
    store = open_store(sqlite_url)
    add_users(store)
    app = build_app(store, tmp_path)
    yield store, app
    store.dispose()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One line and one logged-in client per role for the whole matrix (the routes it sends
    change nothing another case reads)."""
    folder = tmp_path_factory.mktemp("matrix")
    store = open_store(f"sqlite:///{folder / 'trayline.db'}")
    add_users(store)
    app = build_app(store, folder)
    clients: dict[str, tuple[TestClient, str | None]] = {}
    with client_for(app) as anonymous:
        clients["none"] = (anonymous, csrf_of(anonymous))
        opened = []
        for role in ("operator", "engineer", "admin"):
            client = TestClient(app, base_url="http://127.0.0.1")
            opened.append(client)
            clients[role] = (client, login(client, role))
        yield clients
        for client in opened:
            client.close()
    store.dispose()


def _send(
    client: TestClient, route: tuple[str, str, str, str, dict[str, Any]], csrf: str | None
) -> Any:
    method, path, _role, kind, body = route
    headers = {"accept": "application/json"} if path.startswith("/station/") else {}
    if method == "GET":
        return client.get(path, follow_redirects=False)
    if kind == "json":
        if csrf:
            headers["x-csrf-token"] = csrf
        return client.post(path, json=body, headers=headers, follow_redirects=False)
    data = dict(body)
    if csrf:
        data["csrf_token"] = csrf
    return client.post(path, data=data, headers=headers, follow_redirects=False)


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_no_session_gets_401_or_the_login_page(shared: Any, route: Any) -> None:
    client, csrf = shared["none"]
    reply = _send(client, route, csrf)
    if route[1].startswith("/api/"):
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == "Bearer"
    else:
        assert reply.status_code == 303
        assert reply.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("role", ["operator", "engineer", "admin"])
@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_each_role_reaches_exactly_its_routes(shared: Any, route: Any, role: str) -> None:
    client, csrf = shared[role]
    reply = _send(client, route, csrf)
    if rank(role) < rank(route[2]):
        assert reply.status_code == 403, reply.text[:200]
    else:
        assert reply.status_code not in (401, 403), reply.text[:300]
        assert reply.status_code < 500


POSTS = [r for r in ROUTES if r[0] == "POST"]


@pytest.mark.parametrize("route", POSTS, ids=[f"{m} {p}" for m, p, *_ in POSTS])
def test_a_post_without_its_csrf_token_is_refused(shared: Any, route: Any) -> None:
    client, _csrf = shared["admin"]
    reply = _send(client, route, None)
    wrong = _send(client, route, "not-the-token")
    assert reply.status_code == 403
    assert wrong.status_code == 403
    assert "CSRF token" in reply.text


def test_a_refused_post_does_nothing(web: Any) -> None:
    store, app = web
    with client_for(app) as client:
        login(client, "admin")
        body = {"name": "zed", "role": "admin", "password": "pw-long-enough"}
        assert client.post("/admin/users", data=body).status_code == 403
    assert "zed" not in [u.name for u in list_users(store)]


def test_login_needs_its_csrf_token_and_the_right_password(web: Any) -> None:
    _store, app = web
    with client_for(app) as client:
        no_token = client.post("/login", data={"name": "admin", "password": PASSWORD})
        assert no_token.status_code == 403
        csrf = csrf_of(client)
        wrong = client.post(
            "/login", data={"name": "admin", "password": "nope", "csrf_token": csrf}
        )
        assert wrong.status_code == 401 and "wrong name or password" in wrong.text
        nobody = client.post("/login", data={"name": "ghost", "password": "x", "csrf_token": csrf})
        assert nobody.status_code == 401
        assert client.get("/api/units").status_code == 401


def test_login_never_redirects_off_the_site(web: Any) -> None:
    _store, app = web
    with client_for(app) as client:
        csrf = csrf_of(client)
        reply = client.post(
            "/login",
            data={
                "name": "operator",
                "password": PASSWORD,
                "csrf_token": csrf,
                "next": "//evil.example/",
            },
            follow_redirects=False,
        )
    assert reply.headers["location"] == "/"


def test_logout_ends_the_session(web: Any) -> None:
    _store, app = web
    with client_for(app) as client:
        csrf = login(client, "operator")
        assert client.get("/api/units").status_code == 200
        assert (
            client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code
            == 303
        )
        assert client.get("/api/units").status_code == 401


def test_a_disabled_user_is_out_at_the_next_request(web: Any) -> None:
    _store, app = web
    with client_for(app) as op, client_for(app) as admin:
        login(op, "operator")
        assert op.get("/api/units").status_code == 200
        csrf = login(admin, "admin")
        admin.post("/admin/users/operator/enabled", data={"enabled": "no", "csrf_token": csrf})
        assert op.get("/api/units").status_code == 401


def test_api_tokens_act_as_their_user_and_need_no_csrf(web: Any) -> None:
    store, app = web
    add_token(store, "operator", token_digest("tl_operator-token"))
    add_token(store, "engineer", token_digest("tl_engineer-token"))
    with client_for(app) as client:
        op = {"authorization": "Bearer tl_operator-token"}
        eng = {"authorization": "Bearer tl_engineer-token"}
        assert client.get("/api/units", headers=op).status_code == 200
        assert client.get("/api/export/units.csv", headers=op).status_code == 403
        assert client.get("/api/export/units.csv", headers=eng).status_code == 200
        scan = client.post("/api/stations/st1/scan", json={"scan": "hello"}, headers=op)
        assert scan.status_code == 200 and "unknown scan" in scan.json()["text"]
        bad = {"authorization": "Bearer tl_not-a-token"}
        assert client.get("/api/units", headers=bad).status_code == 401
        assert client.get("/api/units", headers={"authorization": "Bearer junk"}).status_code == 401


def test_the_admin_makes_a_token_that_is_shown_once_and_stored_hashed(web: Any) -> None:
    _store, app = web
    with client_for(app) as client:
        csrf = login(client, "admin")
        page = client.post("/admin/users/engineer/token", data={"label": "mes", "csrf_token": csrf})
        token = page.text.split('<pre class="token">')[1].split("</pre>")[0]
        assert token.startswith("tl_")
        assert page.headers["cache-control"] == "no-store"
        users = client.get("/admin/users").text
    assert token not in users and "$argon2" not in users
    with client_for(app) as machine:
        reply = machine.get("/api/yield", headers={"authorization": f"Bearer {token}"})
        assert reply.status_code == 200


def test_an_admin_adds_a_user_who_can_then_log_in(web: Any) -> None:
    store, app = web
    with client_for(app) as client:
        csrf = login(client, "admin")
        short = client.post(
            "/admin/users",
            data={"name": "kim", "role": "operator", "password": "short", "csrf_token": csrf},
        )
        assert short.status_code == 422
        made = client.post(
            "/admin/users",
            data={
                "name": "kim",
                "role": "engineer",
                "password": "long-enough-pw",
                "csrf_token": csrf,
            },
            follow_redirects=False,
        )
        assert made.status_code == 303
        again = client.post(
            "/admin/users",
            data={
                "name": "kim",
                "role": "engineer",
                "password": "long-enough-pw",
                "csrf_token": csrf,
            },
        )
        assert again.status_code == 409
    found = find_user(store, "kim")
    assert found is not None and found.user.role == "engineer"
    assert found.password_hash.startswith("$argon2") and "long-enough-pw" not in found.password_hash
    with client_for(app) as client:
        login(client, "kim", "long-enough-pw")
        assert client.get("/api/export/units.csv").status_code == 200


def test_local_mode_lets_this_machine_in_until_the_first_user(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    app = create_app(store, secret=SECRET, open_local=True)
    with client_for(app) as client:
        page = client.get("/")
        assert page.status_code == 200 and "Local mode" in page.text
        assert client.get("/admin/users").status_code == 200
        assert (
            client.post(
                "/admin/users", data={"name": "x", "role": "admin", "password": "pw-long-enough"}
            ).status_code
            == 403
        )
        from trayline.store.users import add_user

        add_user(store, "first", "admin", hash_password(PASSWORD))
        app.state.users_checked = -1e9  # skip the few seconds' cache
        assert client.get("/api/units").status_code == 401
    closed = create_app(store, secret=SECRET)
    store2: Store = closed.state.store
    assert store2 is store
    store.dispose()


def test_pages_carry_security_headers(web: Any) -> None:
    _store, app = web
    with client_for(app) as client:
        reply = client.get("/login")
    assert reply.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert "httponly" in reply.headers["set-cookie"].lower()
    assert "samesite=strict" in reply.headers["set-cookie"].lower()

"""``trayline users`` and ``trayline serve``'s refusals: passwords never in argv, tokens printed
once and stored hashed, no network address without users, the session key file kept private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.cli.serve import is_loopback
from trayline.store.db import open_store
from trayline.store.users import find_user, user_for_token
from trayline.web.access import token_digest
from trayline.web.secret import SECRET_FILE, SecretError, load_secret, workspace_of

runner = CliRunner()


def _run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_users_add_list_role_token(sqlite_url: str) -> None:
    code, out = _run(
        "users",
        "add",
        "ann",
        "--role",
        "admin",
        "--password-stdin",
        "--db",
        sqlite_url,
        stdin="s3cret-pass\n",
    )
    assert code == 0 and "ann added as admin" in out
    assert "s3cret-pass" not in out
    code, out = _run(
        "users", "add", "ann", "--role", "admin", "--db", sqlite_url, stdin="s3cret-pass\n"
    )
    assert code == 2 and "exists already" in out
    assert _run("users", "add", "bob", "--role", "boss", "--db", sqlite_url, stdin="x" * 9)[0] == 2
    code, out = _run(
        "users", "add", "bob", "--role", "operator", "--db", sqlite_url, stdin="short\n"
    )
    assert code == 2 and "at least 8" in out
    assert (
        _run("users", "add", "b b", "--role", "operator", "--db", sqlite_url, stdin="x" * 9)[0] == 2
    )
    code, token = _run("users", "token", "ann", "--label", "mes", "--db", sqlite_url)
    assert code == 0 and token.strip().startswith("tl_") and token.count("\n") == 1
    assert _run("users", "token", "nobody", "--db", sqlite_url)[0] == 1
    assert _run("users", "role", "ann", "engineer", "--db", sqlite_url)[0] == 0
    code, listing = _run("users", "list", "--json", "--db", sqlite_url)
    assert '"role": "engineer"' in listing and '"tokens": 1' in listing
    assert "$argon2" not in listing and token.strip() not in listing
    store = open_store(sqlite_url)
    found = find_user(store, "ann")
    assert found is not None and found.password_hash.startswith("$argon2")
    user = user_for_token(store, token_digest(token.strip()))
    assert user is not None and user.name == "ann"
    assert _run("users", "disable", "ann", "--db", sqlite_url)[0] == 0
    assert user_for_token(store, token_digest(token.strip())) is None
    store.dispose()


def test_serve_refuses_a_network_address_without_users(sqlite_url: str) -> None:
    code, out = _run("serve", "--host", "0.0.0.0", "--db", sqlite_url)
    assert code == 2
    assert "no users" in out and "trayline users add" in out


def test_serve_refuses_a_bad_line_file(sqlite_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "trayline.toml"
    bad.write_text("[line]\nsku = 'NOPE'\n")
    code, out = _run("serve", "-c", str(bad), "--db", sqlite_url, "--port", "1")
    assert code == 2 and "nothing started" in out


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("lab-pc", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_session_key_file_is_made_private_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAYLINE_WEB_SECRET", raising=False)
    key = load_secret(tmp_path)
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(tmp_path) == key and len(key) >= 32
    path.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        load_secret(tmp_path)
    assert workspace_of(f"sqlite:///{tmp_path / 'x.db'}") == tmp_path.resolve()

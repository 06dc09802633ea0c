"""Who may drive the local cloud's admin surface, and how ``cloud serve`` says no.

``/_emulator`` reads every mobile secret, mints tokens and resets the cloud. On
loopback, without a token, it is open (tests and rehearsals on one PC). Bound to
anything else, ``trayline cloud serve`` refuses to start unless an admin token
(from the environment or a 0600 file, never argv) guards it; with a token set,
every ``/_emulator`` request needs it. Bad ports and busy ports are one line and
exit status 2, never a traceback.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner, Result

from trayline.cli.app import app as cli
from trayline.particle.emulator import EmulatorConfig, create_app
from trayline.particle.emulator.server import is_loopback_host

TRAYLINE = [sys.executable, "-m", "trayline", "cloud", "serve"]
ADMIN = "a" * 32


def _run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """``trayline cloud serve ARGS`` in-process: every case here stops before listening."""
    env = {"TRAYLINE_CLOUD_ADMIN_TOKEN": None, **(env or {})}
    return CliRunner().invoke(cli, ["cloud", "serve", *args], env=env)


def _one_error_line(done: Result, *needles: str) -> str:
    assert done.exit_code == 2, (done.stdout, done.stderr, done.exception)
    assert done.exception is None or isinstance(done.exception, SystemExit)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0]
    assert done.stdout == ""  # nothing listened, nothing announced
    return lines[0]


async def test_with_an_admin_token_every_admin_path_needs_it() -> None:
    app = create_app(EmulatorConfig(admin_token=ADMIN))
    token = app.cloud.add_token("me@x")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://cloud") as http:
        for method, path in [
            ("GET", "/_emulator/state"),
            ("POST", "/_emulator/tokens"),
            ("POST", "/_emulator/reset"),
            ("POST", "/_emulator/no-such-thing"),  # 401, not a 404 that maps the surface
        ]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN}):
                r = await http.request(method, path, headers=headers, json={"username": "x"})
                assert r.status_code == 401, (method, path, headers)
                assert r.json()["error"] == "invalid_token"
        assert app.cloud.tokens.keys() == {token}  # nothing minted, nothing reset
        good = {"Authorization": f"Bearer {ADMIN}"}
        r = await http.post("/_emulator/tokens", json={"username": "op@x"}, headers=good)
        assert r.status_code == 201
        assert (await http.get("/_emulator/state", headers=good)).status_code == 200
        # Particle paths take Particle tokens, as before
        r = await http.get("/v1/user", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert "admin" not in repr(app.config)  # the token stays out of reprs and logs


async def test_without_an_admin_token_loopback_admin_stays_open() -> None:
    app = create_app(EmulatorConfig())
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://cloud") as http:
        assert (await http.get("/_emulator/state")).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.5.5", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_serve_refuses_a_non_loopback_host_without_an_admin_token(host: str) -> None:
    done = _run("--host", host, "--port", "0")
    _one_error_line(done, f"--host {host}", "TRAYLINE_CLOUD_ADMIN_TOKEN", "--admin-token-file")


def test_admin_token_file_must_be_private_and_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    path.write_text(ADMIN + "\n")
    path.chmod(0o644)
    _one_error_line(_run("--admin-token-file", str(path)), "chmod 600")
    path.chmod(0o600)
    path.write_text("short\n")
    _one_error_line(_run("--admin-token-file", str(path)), "at least 16")
    _one_error_line(
        _run("--admin-token-file", str(path), env={"TRAYLINE_CLOUD_ADMIN_TOKEN": ADMIN}),
        "not both",
    )
    _one_error_line(_run("--admin-token-file", str(tmp_path / "missing")), "cannot read")


def test_serve_with_an_env_admin_token_guards_admin_and_never_prints_it() -> None:
    env = {k: v for k, v in os.environ.items()}
    env["TRAYLINE_CLOUD_ADMIN_TOKEN"] = ADMIN
    proc = subprocess.Popen(
        [*TRAYLINE, "--port", "0", "--seed", "BRN404:2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        match = re.fullmatch(r"trayline cloud listening on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        hint = proc.stdout.readline()
        assert "$TRAYLINE_CLOUD_ADMIN_TOKEN" in hint and ADMIN not in hint
        url = match.group(1)
        assert httpx2.get(f"{url}/_emulator/state", timeout=5).status_code == 401
        r = httpx2.get(
            f"{url}/_emulator/state", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5
        )
        assert r.status_code == 200 and len(r.json()["devices"]) == 2
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert ADMIN not in err


@pytest.mark.parametrize("port", ["70000", "-1", "abc", "8080.5", ""])
def test_a_bad_port_is_one_line_and_exit_2(port: str) -> None:
    _one_error_line(_run("--port", port), "--port", "0 to 65535")


def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _one_error_line(_run("--port", str(port)), f"127.0.0.1:{port}", "another --port")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--latency-ms", "1e308"], "--latency-ms 1e308"),
        (["--latency-ms", "nan"], "--latency-ms nan"),
        (["--jitter-ms", "-5"], "--jitter-ms -5"),
        (["--drop-rate", "1.5"], "fraction"),
        (["--rate-limit", "1/99999999"], "at most"),
        (["--max-body-bytes", "10"], "--max-body-bytes 10"),
    ],
)
def test_absurd_serve_options_are_one_line_and_exit_2(args: list[str], needle: str) -> None:
    _one_error_line(_run("--port", "0", *args), needle)

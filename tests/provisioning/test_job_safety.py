"""Provisioning you can trust: the right cloud, one process per job, signals, bad configuration.

Each test replays one failure from issue 7 as a user (or an adversary) would and
checks what trayline does now: a documented exit code, one line, no traceback.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from cloudkit import PRODUCT, TOKEN, Cloud, make_cloud

from trayline.particle.emulator import EmulatorConfig, serve_in_background

SLOW = EmulatorConfig(seed=9, latency_ms=20, rate_limit=(100, 1.0))


def trayline(*args: str, env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "trayline", *args], env=env, capture_output=True, text=True, **kw
    )


def env_for(url: str, db: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PARTICLE_ACCESS_TOKEN": TOKEN,
        "PARTICLE_API_URL": url,
        "TRAYLINE_DATABASE_URL": db,
        "TRAYLINE_RATE_LIMIT": "100/1",
        "TMPDIR": str(tmp_path),
        **extra,
    }


def run_args(path: Path, *more: str) -> list[str]:
    return ["provision", "run", "--product", str(PRODUCT), "--input", str(path), "--json", *more]


def tray(cloud: Cloud, tmp_path: Path, n: int, name: str = "tray.txt") -> Path:
    devices = cloud.app.cloud.make_devices("BRN404", n)
    path = tmp_path / name
    path.write_text("\n".join(d.id for d in devices) + "\n")
    return path


def counters(url: str) -> dict[str, object]:
    return httpx2.get(f"{url}/_emulator/state").json()["counters"]  # type: ignore[no-any-return]


def one_clean_line(text: str) -> None:
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text


# -- two processes, one job ------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_one_job(db_url: str, tmp_path: Path) -> None:
    """Two `provision run` on a fresh database at once: one works, the other exits 5 naming
    the holder; together they send what one run sends (within --concurrency)."""
    single = make_cloud(SLOW)
    single_input = tray(single, tmp_path, 150, "single.txt")
    with serve_in_background(single.app) as url:
        env = env_for(url, f"sqlite:///{tmp_path / 'single.db'}", tmp_path)
        alone = trayline(*run_args(single_input, "--group", "race"), env=env)
        assert alone.returncode == 0, alone.stderr
        single_requests = int(counters(url)["requests"])  # type: ignore[call-overload]

    cloud = make_cloud(SLOW)
    path = tray(cloud, tmp_path, 150)
    with serve_in_background(cloud.app) as url:
        env = env_for(url, db_url, tmp_path)
        argv = [sys.executable, "-m", "trayline", *run_args(path, "--group", "race")]
        procs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        results = [(p.wait(), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 5], results
        busy = next(err.decode() for code, _, err in results if code == 5)
        assert "Traceback" not in busy
        assert "pid " in busy and " on " in busy and "since" in busy
        sent = int(counters(url)["requests"])  # type: ignore[call-overload]
        assert abs(sent - single_requests) <= 32, (sent, single_requests)
        assert counters(url)["by_status"].get("429", 0) == 0  # type: ignore[attr-defined]


# -- a second cloud is a second job ------------------------------------------------------------


def test_same_input_against_a_second_cloud_is_a_second_job(tmp_path: Path) -> None:
    """Rehearse on one local cloud, then run the same tray against another: the second
    cloud really receives the requests, and `provision status` shows both jobs."""
    first, second = make_cloud(EmulatorConfig(seed=3)), make_cloud(EmulatorConfig(seed=3))
    path = tray(first, tmp_path, 12)
    second.app.cloud.make_devices("BRN404", 12)  # the same seed: the same devices
    db = f"sqlite:///{tmp_path / 't.db'}"
    with serve_in_background(first.app) as url_a, serve_in_background(second.app) as url_b:
        one = trayline(*run_args(path, "--group", "g"), env=env_for(url_a, db, tmp_path))
        assert one.returncode == 0, one.stderr
        two = trayline(*run_args(path, "--group", "g"), env=env_for(url_b, db, tmp_path))
        assert two.returncode == 0, two.stderr
        doc_a, doc_b = json.loads(one.stdout), json.loads(two.stdout)
        assert doc_a["job"]["id"] != doc_b["job"]["id"]
        assert doc_b["outcome"]["requests"] >= 12 and not doc_b["outcome"]["resumed"]
        renamed = [d for d in second.app.cloud.devices.values() if d.name == d.serial_number]
        assert len(renamed) == 12
        status = trayline("provision", "status", "--json", env=env_for(url_b, db, tmp_path))
        jobs = json.loads(status.stdout)
        assert {j["api_url"] for j in jobs} == {url_a, url_b}
        assert {j["account"] for j in jobs} == {"maker@example.com"}


# -- store failures: exit 4, one line ----------------------------------------------------------


def _newer_schema(tmp_path: Path) -> str:
    path = tmp_path / "newer.db"
    url = f"sqlite:///{path}"
    from trayline.store.db import open_store

    open_store(url).dispose()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    conn.commit()
    conn.close()
    return url


def _foreign(tmp_path: Path) -> str:
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _corrupt(tmp_path: Path) -> str:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"SQLite format 3\0" + os.urandom(4096))
    return f"sqlite:///{path}"


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 2048)
    return f"sqlite:///{path}"


def _read_only(tmp_path: Path) -> str:
    path = tmp_path / "ro.db"
    from trayline.store.db import open_store

    open_store(f"sqlite:///{path}").dispose()
    return f"sqlite:///file:{path}?mode=ro&uri=true"


STORE_FAILURES = {
    "corrupt": (_corrupt, "move it away"),
    "foreign-file": (_not_a_database, "not a trayline"),
    "foreign-database": (_foreign, "not trayline's"),
    "newer-schema": (_newer_schema, "upgrade trayline"),
    "read-only": (_read_only, "not writable"),
    "missing-folder": (lambda p: f"sqlite:///{p / 'no' / 'such' / 'x.db'}", "missing"),
    "mysql": (lambda p: "mysql://user@127.0.0.1/db", "SQLite or PostgreSQL"),
    "unreachable": (
        lambda p: "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
        "does not answer",
    ),
}


@pytest.mark.parametrize("case", list(STORE_FAILURES))
def test_store_failure_is_exit_4_one_line(case: str, tmp_path: Path) -> None:
    make, words = STORE_FAILURES[case]
    db = make(tmp_path)
    cloud = make_cloud()
    path = tray(cloud, tmp_path, 3)
    with serve_in_background(cloud.app) as url:
        env = env_for(url, db, tmp_path)
        commands = [run_args(path, "--group", "g"), ["provision", "status"]]
        if case == "read-only":
            commands.pop()  # reading a read-only store is fine; writing to it is not
        for args in commands:
            result = trayline(*args, env=env)
            assert result.returncode == 4, (args, result.stdout, result.stderr)
            one_clean_line(result.stderr)
            assert words in result.stderr
            assert TOKEN not in result.stderr


def test_full_disk_during_a_job_is_exit_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite refusing to grow ('database or disk is full') mid-job: exit 4, one line."""
    from typer.testing import CliRunner

    from trayline.cli.app import app
    from trayline.store import db as store_db

    path = tmp_path / "full.db"
    store_db.open_store(f"sqlite:///{path}").dispose()
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    real_pragmas = store_db._sqlite_pragmas

    def tight(dbapi_connection: object, record: object) -> None:
        real_pragmas(dbapi_connection, record)
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + 1}")  # type: ignore[attr-defined]

    monkeypatch.setattr(store_db, "_sqlite_pragmas", tight)
    cloud = make_cloud()
    tray_path = tray(cloud, tmp_path, 300)
    with serve_in_background(cloud.app) as url:
        env = env_for(url, f"sqlite:///{path}", tmp_path)
        result = CliRunner().invoke(app, run_args(tray_path, "--group", "g"), env=env)
    assert result.exit_code == 4, result.output
    assert "full" in result.stderr and "Traceback" not in result.output


# -- signals -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_marks_interrupted_and_resume_works(signum: int, code: int, tmp_path: Path) -> None:
    cloud = make_cloud(SLOW)
    path = tray(cloud, tmp_path, 300)
    db = f"sqlite:///{tmp_path / 't.db'}"
    with serve_in_background(cloud.app) as url:
        env = env_for(url, db, tmp_path)
        argv = [sys.executable, "-m", "trayline", *run_args(path, "--group", "sig")]
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while int(counters(url)["requests"]) < 30 and time.monotonic() < deadline:  # type: ignore[call-overload]
            time.sleep(0.05)
        process.send_signal(signum)
        _, err = process.communicate()
        assert process.returncode == code, err
        assert "interrupted — run the same command again to resume" in err.decode()
        assert "Traceback" not in err.decode()
        status = json.loads(trayline("provision", "status", "--json", env=env).stdout)
        assert status[0]["status"] == "interrupted"
        again = trayline(*run_args(path, "--group", "sig"), env=env)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["outcome"]["provisioned"] == 300


# -- configuration errors: exit 2, nothing retried ---------------------------------------------


@pytest.fixture
def html_server() -> Iterator[str]:
    class Html(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = b"<!doctype html><html><body>Welcome to our router</body></html>"
            self.send_response(200 if self.path == "/v1/user" else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    ("env_change", "words"),
    [
        ({"PARTICLE_ACCESS_TOKEN": "tökén" + "a" * 35}, "non-ASCII"),
        ({"PARTICLE_ACCESS_TOKEN": "a\u2028b" + "c" * 30}, "access token"),
        ({"PARTICLE_API_URL": "ftp://api.particle.io"}, "http:// or https://"),
        ({"PARTICLE_API_URL": "api.particle.io"}, "http:// or https://"),
        ({"PARTICLE_API_URL": "http://127.0.0.1:70000"}, "API URL"),
    ],
    ids=["non-ascii-token", "separator-token", "ftp-url", "no-scheme", "bad-port"],
)
def test_bad_configuration_is_exit_2(
    env_change: dict[str, str], words: str, tmp_path: Path
) -> None:
    path = tmp_path / "tray.txt"
    path.write_text("e00fce68" + "0" * 16 + "\n")
    env = env_for("http://127.0.0.1:9", f"sqlite:///{tmp_path / 't.db'}", tmp_path)
    env.update(env_change)
    result = trayline(*run_args(path), env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    one_clean_line(result.stderr)
    assert words in result.stderr
    assert "tökén" not in result.stderr


def test_api_url_answering_html_is_exit_2(html_server: str, tmp_path: Path) -> None:
    path = tmp_path / "tray.txt"
    path.write_text("e00fce68" + "0" * 16 + "\n")
    env = env_for(html_server, f"sqlite:///{tmp_path / 't.db'}", tmp_path)
    result = trayline(*run_args(path), env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    one_clean_line(result.stderr)
    assert "HTML" in result.stderr and "PARTICLE_API_URL" in result.stderr

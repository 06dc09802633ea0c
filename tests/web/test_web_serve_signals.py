"""``trayline serve`` as a real process: SIGTERM stops it with exit 143, Ctrl-C with 130 — the
stations stopped, the store closed, one line on stderr, no traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from trayline.cli.demo import (
    CONFIG,
    DEMO_PRODUCT,
    SKU,
    make_demo_bundles,
    make_demo_tray,
    served_tray,
    slots_toml,
)
from trayline.core.skus import get_sku
from trayline.store.db import open_store
from trayline.store.units import unit_by_serial
from trayline.store.users import add_token, add_user
from trayline.web.access import hash_password, new_token, token_digest


def _http(url: str, body: Any = None, token: str = "") -> Any:
    """GET (or POST ``body`` as JSON) with the standard library; the JSON or text answered."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data, headers)
    with urllib.request.urlopen(request, timeout=5) as reply:
        text = reply.read().decode()
    return json.loads(text) if reply.headers.get_content_type() == "application/json" else text


TOKEN = new_token()
SERVING = re.compile(r"trayline serves (http://127\.0\.0\.1:(\d+))/")
WAIT_S = 60.0  # a guard against a hang, not a speed requirement


def _serve(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TRAYLINE_WEB_SECRET="s" * 40, COLUMNS="200")
    env.pop("TRAYLINE_DATABASE_URL", None)
    db = f"sqlite:///{tmp_path / 'trayline.db'}"
    return subprocess.Popen(
        [sys.executable, "-m", "trayline", "serve", "--port", "0", "--db", db, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )


def _wait_serving(proc: subprocess.Popen[str]) -> str:
    """The URL the server printed, once it answers there."""
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first line names the port (--port 0: any free one)
    found = SERVING.search(line)
    if not found:
        proc.kill()
        raise AssertionError(f"no 'trayline serves' line: {line!r} {proc.communicate()}")
    url = found.group(1)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            _http(url + "/login")
            return url
        except OSError:  # refused, or not answering yet
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"trayline serve did not answer: {proc.communicate()}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"serve did not stop on {signum}: {proc.communicate()}") from None
    return proc.returncode, err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_server_with_its_exit_code(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    proc = _serve(tmp_path)
    try:
        _wait_serving(proc)
        returncode, err = _stop(proc, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert returncode == code, err
    assert err.strip() == f"trayline serve stopped ({signum.name})"
    assert "Traceback" not in err


@contextmanager
def _virtual_line(tmp_path: Path) -> Iterator[tuple[Path, Path, str, str]]:
    """A one-slot virtual tray served in a child process, its line file, a sticker, a serial;
    the store has the line's bundles and an operator "ola" whose API token is TOKEN."""
    sku = get_sku(SKU)
    tray, records = make_demo_tray(tmp_path / "tray", sku, 1, seed=11)
    with open_store(f"sqlite:///{tmp_path / 'trayline.db'}") as store:
        make_demo_bundles(store, tmp_path / "firmware", sku)
        add_user(store, "ola", "operator", hash_password("ola-password"))
        add_token(store, "ola", token_digest(TOKEN))
    config = tmp_path / "trayline.toml"
    config.write_text(CONFIG.format(product=DEMO_PRODUCT, sku=SKU, slots=slots_toml(1)))
    sticker = (tray.folder / "stickers.txt").read_text().split("\n")[0]
    with served_tray(tray.folder, 1, 0.0):
        yield tray.folder, config, sticker, records[0].identity.serial_number


def test_sigterm_stops_the_stations_and_closes_the_store(tmp_path: Path) -> None:
    with _virtual_line(tmp_path) as (folder, config, sticker, serial):
        proc = _serve(tmp_path, "-c", str(config), "--virtual", str(folder), "--time-scale", "0")
        try:
            url = _wait_serving(proc)
            for scan in (sticker, "BAT-00000001", "ENC-00000001"):
                reply = _http(f"{url}/api/stations/demo-station/scan", {"scan": scan}, TOKEN)
                assert reply["level"] != "error", reply
            deadline = time.monotonic() + WAIT_S
            while True:
                slots = _http(f"{url}/api/stations", token=TOKEN)[0]["slots"]
                if slots[0]["state"] in ("pass", "fail"):
                    break
                if time.monotonic() > deadline:  # a hang guard, not a speed check
                    pytest.fail(f"the unit did not finish in {WAIT_S} s: {slots}")
                time.sleep(0.1)
            assert slots[0]["state"] == "pass", slots
            returncode, err = _stop(proc, signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert returncode == 143, err
    assert err.strip() == "trayline serve stopped (SIGTERM)" and "Traceback" not in err
    assert not (tmp_path / "trayline.db-wal").exists()  # the last connection closed: checkpointed
    with open_store(f"sqlite:///{tmp_path / 'trayline.db'}") as store:
        unit = unit_by_serial(store, serial)
        assert unit is not None and unit.status == "ready"

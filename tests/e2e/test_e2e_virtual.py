"""The whole path in a browser: `trayline serve` (a real process) drives a virtual tray
(`trayline virtual serve`: simulated flash, ID registers and test-firmware console on a pty);
an operator logs in, scans the sticker and parts, and sees the unit reach PASS."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from browserkit import ARGS, CHROMIUM, SHOTS, free_port

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

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: run `make e2e-deps`"
)
PASSWORD = "virtual-line-pw"


def _trayline(*args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trayline", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _wait_up(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"trayline serve exited: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            httpx2.get(url + "/login", timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.2)
    raise AssertionError("trayline serve did not answer")


def test_an_operator_scans_a_virtual_unit_to_pass(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    sku = get_sku(SKU)
    tray, records = make_demo_tray(tmp_path / "tray", sku, 1, seed=7)
    db = f"sqlite:///{tmp_path / 'trayline.db'}"
    with open_store(db) as store:
        make_demo_bundles(store, tmp_path / "firmware", sku)
    config = tmp_path / "trayline.toml"
    config.write_text(CONFIG.format(product=DEMO_PRODUCT, sku=SKU, slots=slots_toml(1)))
    _trayline(
        "users",
        "add",
        "ola",
        "--role",
        "operator",
        "--password-stdin",
        "--db",
        db,
        stdin=PASSWORD + "\n",
    )
    sticker = (tray.folder / "stickers.txt").read_text().split("\n")[0]
    serial = records[0].identity.serial_number
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with served_tray(tray.folder, 1, 0.0):
        serve = [
            sys.executable,
            "-m",
            "trayline",
            "serve",
            "-c",
            str(config),
            "--virtual",
            str(tray.folder),
        ]
        proc = subprocess.Popen(
            [*serve, "--time-scale", "0", "--port", str(port), "--db", db],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            _wait_up(url, proc)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page: Any = browser.new_page(viewport={"width": 1200, "height": 800})
                page.goto(url + "/station/demo-station")
                page.fill("input[name=name]", "ola")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(url + "/station/demo-station")
                for scan in (sticker, "BAT-00000001", "ENC-00000001"):
                    page.keyboard.type(scan)
                    page.keyboard.press("Enter")
                    page.wait_for_function("document.getElementById('scan').value === ''")
                card = page.locator(".slot.pass", has_text=serial)
                card.wait_for(timeout=90_000)
                SHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SHOTS / "virtual-pass.png"), full_page=True)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert (tmp_path / ".trayline-web-secret").stat().st_mode & 0o077 == 0
    with open_store(db) as store:
        from trayline.store.units import unit_by_serial

        unit = unit_by_serial(store, serial)
        assert unit is not None and unit.status == "ready"

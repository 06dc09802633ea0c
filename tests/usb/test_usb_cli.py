"""``trayline device`` over USB: --usb ID, list --usb, udev-rules, on a virtual tray."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.core.modules import parse_module
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.virtual.device import DCT_SETUP_DONE_OFFSET
from trayline.virtual.factory import factory_modules, user_part
from trayline.virtual.tray import FactoryOptions, Tray

runner = CliRunner()


@pytest.fixture(autouse=True)
def _instant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAYLINE_VIRTUAL_TIME_SCALE", "0")


def _tray(tmp_path: Path, sku: str = "BRN404", release: str = "2.3.1") -> tuple[Path, Tray, str]:
    folder = tmp_path / "tray"
    tray = Tray.create(folder, get_sku(sku), 2, seed=4, options=FactoryOptions(device_os=release))
    return folder, tray, tray.device_ids()[0]


def test_list_usb_shows_platform_and_mode(tmp_path: Path) -> None:
    folder, tray, _ = _tray(tmp_path)
    result = runner.invoke(app, ["device", "list", "--usb", "--virtual", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted(r["device_id"] for r in rows) == sorted(tray.device_ids())
    assert {(r["platform"], r["mode"], r["usb"]) for r in rows} == {
        ("boron", "normal", "2b04:c00d")
    }


def test_identify_usb_checks_the_sticker(tmp_path: Path) -> None:
    folder, _, device_id = _tray(tmp_path)
    rows = list(csv.reader((folder / "tray.csv").read_text().splitlines()))
    serial = next(r[1] for r in rows if r[0] == device_id)
    ok = runner.invoke(app, ["device", "identify", "--usb", device_id, "--virtual", str(folder),
                             "--sticker", serial, "--json"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["serial_number"] == serial and data["serial_checked"] is True
    assert data["mode"] == "listening" and data["device_os"] == "2.3.1" and data["imei"] is None
    bad = runner.invoke(app, ["device", "identify", "--usb", device_id, "--virtual", str(folder),
                              "--sticker", "P028AAAAAAAAAAA"])  # fmt: skip
    assert bad.exit_code == 6 and "on the sticker" in bad.output
    usage = runner.invoke(app, ["device", "identify", "--usb", device_id, "--virtual", str(folder),
                                "--sticker", "short"])  # fmt: skip
    assert usage.exit_code == 2 and "--sticker" in usage.output
    missing = runner.invoke(app, ["device", "identify", "--usb", "e00fce68000000000000aaaa",
                                  "--virtual", str(folder)])  # fmt: skip
    assert missing.exit_code == 6 and "not attached" in missing.output


def test_setup_done_usb_on_2x_then_4x(tmp_path: Path) -> None:
    folder, tray, device_id = _tray(tmp_path)
    done = runner.invoke(app, ["device", "setup-done", "--usb", device_id, "--virtual", str(folder),
                               "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"device_id": device_id, "needed": True, "setup_done": True}
    assert tray.load(device_id).dct[DCT_SETUP_DONE_OFFSET] == 1
    folder4, _, id4 = _tray(tmp_path / "four", "BRN404X", "4.2.0")
    later = runner.invoke(app, ["device", "setup-done", "--usb", id4, "--virtual", str(folder4)])
    assert later.exit_code == 0 and "not needed" in later.output


def test_flash_bundle_over_usb(tmp_path: Path) -> None:
    folder, tray, device_id = _tray(tmp_path, "BRN404X", "4.2.0")
    release = SemVer(5, 8, 0)
    files = []
    modules = [m for m in factory_modules(13, release) if parse_module(m).function != 5]
    for i, data in enumerate([*modules, user_part(13, release, test_firmware=True)]):
        path = tmp_path / f"m{i}.bin"
        path.write_bytes(data)
        files.append(str(path))
    db = ["--db", f"sqlite:///{tmp_path / 'line.db'}"]
    created = runner.invoke(app, ["firmware", "bundle", "create", "--sku", "BRN404X", "--name",
                                  "prod", *db, *files])  # fmt: skip
    assert created.exit_code == 0, created.output
    flashed = runner.invoke(app, ["device", "flash", "prod", "--usb", device_id, "--virtual",
                                  str(folder), *db, "--json"])  # fmt: skip
    assert flashed.exit_code == 0, flashed.output
    report = json.loads(flashed.output)
    assert report["device_id"] == device_id and report["written"]
    device = tray.load(device_id)
    assert device.runs_test_firmware() and str(device.device_os()) == "5.8.0"


def test_udev_rules_name_particle_and_the_debugger() -> None:
    result = runner.invoke(app, ["device", "udev-rules"])
    assert result.exit_code == 0
    assert 'ATTRS{idVendor}=="2b04", ATTRS{idProduct}=="[cd]0??", MODE="0666"' in result.output
    assert 'ATTRS{idVendor}=="0d28", ATTRS{idProduct}=="0204"' in result.output
    assert 'GROUP="plugdev"' in result.output and "ID_MM_DEVICE_IGNORE" in result.output


def test_a_change_made_by_another_process_is_seen(tmp_path: Path) -> None:
    """The tray folder is the shared state: a child process sets the flag, this one sees it."""
    import os
    import subprocess
    import sys

    from trayline.usb.device import ParticleDevice
    from trayline.usb.virtual.backend import VirtualBackend

    folder, _, device_id = _tray(tmp_path)
    backend = VirtualBackend.from_tray(folder, time_scale=0)
    with ParticleDevice.open(device_id, backend=backend) as dev:
        assert dev.is_setup_done() is False
    env = {**os.environ, "TRAYLINE_VIRTUAL_TIME_SCALE": "0"}
    child = subprocess.run(
        [sys.executable, "-m", "trayline", "device", "setup-done", "--usb", device_id,
         "--virtual", str(folder)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    with ParticleDevice.open(device_id, backend=backend) as dev:
        assert dev.is_setup_done() is True

"""``trayline virtual``: tray, serve (a real process, stopped by signals), show, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.console import ListeningConsole

runner = CliRunner()


def test_tray_command_writes_the_documented_files(tmp_path: Path) -> None:
    folder = tmp_path / "tray"
    result = runner.invoke(
        app,
        ["virtual", "tray", "--sku", "BRN404", "--count", "5", "--dir", str(folder), "--seed", "7"],
    )
    assert result.exit_code == 0, result.output
    assert "5 virtual BRN404" in result.output
    names = {p.name for p in folder.iterdir()}
    assert {"tray.csv", "stickers.txt", "devices.json", "devices"} <= names
    devices = json.loads((folder / "devices.json").read_text())
    assert len(devices) == 5
    for device in devices:
        assert {
            "device_id",
            "serial_number",
            "iccid",
            "imei",
            "sku",
            "platform_id",
            "faults",
            "readings",
        } <= set(device)
        assert (folder / "devices" / device["device_id"] / "flash.bin").stat().st_size == 0x100000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sku", "BRN999", "--count", "1"], "--sku: unknown SKU"),
        (["--sku", "BRN404", "--count", "1", "--device-os", "banana"], "not a Device OS version"),
        (["--sku", "BRN404", "--count", "0"], "count"),
    ],
)
def test_tray_command_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["virtual", "tray", "--dir", str(tmp_path / "t"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "t" / "devices.json").exists()


def test_show_and_a_broken_devices_json(tmp_path: Path) -> None:
    folder = tmp_path / "tray"
    runner.invoke(app, ["virtual", "tray", "--sku", "E404", "--count", "2", "--dir", str(folder)])
    shown = runner.invoke(app, ["virtual", "show", str(folder), "--json"])
    assert shown.exit_code == 0
    rows = json.loads(shown.output)
    assert [r["device_os"] for r in rows] == ["2.3.1", "2.3.1"]
    assert rows[0]["modules"][0] == "bootloader 0 v1006"
    data = json.loads((folder / "devices.json").read_text())
    data[1]["faults"]["flip_bit_on_write"] = "sometimes"
    (folder / "devices.json").write_text(json.dumps(data))
    for command in (["virtual", "show", str(folder)], ["virtual", "serve", str(folder)]):
        broken = runner.invoke(app, command)
        assert broken.exit_code == 2
        line = " ".join(broken.output.split())
        assert f"devices.json: device 1 ({data[1]['device_id']}): faults.flip_bit_on_write" in line


def test_help_has_examples() -> None:
    for command in (
        ["virtual", "--help"],
        ["virtual", "tray", "--help"],
        ["virtual", "serve", "--help"],
        ["virtual", "show", "--help"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0 and "Example" in result.output


def _serve(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trayline", "virtual", "serve", str(folder), "--time-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_serve_prints_one_line_per_device_and_stops_cleanly(
    tmp_path: Path, signum: int, code: int
) -> None:
    folder = tmp_path / "tray"
    runner.invoke(app, ["virtual", "tray", "--sku", "BRN404", "--count", "3", "--dir", str(folder)])
    ids = [d["device_id"] for d in json.loads((folder / "devices.json").read_text())]
    proc = _serve(folder)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in ids]
        assert [line[0] for line in lines] == ids
        ports = json.loads((folder / "ports.json").read_text())
        assert {line[0]: line[2] for line in lines} == ports
        with ListeningConsole(lines[0][2], timeout=5) as console:
            assert console.identify().device_id == ids[0]
        second = _serve(folder)
        assert second.wait(30) == 5
        assert (
            second.stderr is not None and "another `trayline virtual serve`" in second.stderr.read()
        )
    finally:
        proc.send_signal(signum)
        assert proc.wait(30) == code
    assert json.loads((folder / "ports.json").read_text()) == {}
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_serve_beyond_the_open_files_limit_is_one_line_exit_2(tmp_path: Path) -> None:
    import resource

    folder = tmp_path / "tray"
    runner.invoke(
        app, ["virtual", "tray", "--sku", "BRN404", "--count", "40", "--dir", str(folder)]
    )

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    proc = subprocess.run(
        [sys.executable, "-m", "trayline", "virtual", "serve", str(folder), "--time-scale", "0"],
        capture_output=True,
        text=True,
        preexec_fn=low_limit,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot open a serial port per device" in proc.stderr and "ulimit -n" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads((folder / "ports.json").read_text()) == {}

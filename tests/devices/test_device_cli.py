"""``trayline device`` end to end on a virtual tray: issue 9's acceptance walk, in-process.

A tray of BRN404s; one identified over its pseudo-terminal with the same
pyserial code a real /dev/ttyACM0 gets; a production bundle flashed through the
virtual backend, flashed again (nothing written), then a new user part (only it
written); the firmware record read back. A flipped bit and a protected chip
each exit 6 with nothing marked flashed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.virtual.device import Faults
from trayline.virtual.serial_port import PortServer
from trayline.virtual.tray import Tray

runner = CliRunner()


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAYLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'line.db'}")
    monkeypatch.setenv("TRAYLINE_VIRTUAL_TIME_SCALE", "0")
    monkeypatch.delenv("TRAYLINE_BUNDLE_DIR", raising=False)
    for args in (
        ["virtual", "tray", "--sku", "BRN404", "--count", "3", "--dir", "tray", "--seed", "5"],
        [
            "virtual",
            "firmware",
            "--sku",
            "BRN404",
            "--out",
            "a",
            "--device-os",
            "4.0.1",
            "--user-version",
            "7",
        ],
        [
            "virtual",
            "firmware",
            "--sku",
            "BRN404",
            "--out",
            "b",
            "--device-os",
            "4.0.1",
            "--user-version",
            "8",
        ],
    ):
        assert runner.invoke(app, args).exit_code == 0, args
    for name in ("a", "b"):
        files = sorted(str(p) for p in (tmp_path / name).glob("*.bin"))
        made = runner.invoke(
            app,
            [
                "firmware",
                "bundle",
                "create",
                "--sku",
                "BRN404",
                "--name",
                f"prod-{name}",
                "--role",
                "production",
                *files,
            ],
        )
        assert made.exit_code == 0, made.output
    return tmp_path


def _flash(bundle: str, device: str, *extra: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(
        app, ["device", "flash", bundle, "--virtual", "tray", "--probe", device, "--json", *extra]
    )
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, {"output": result.output}


def _functions(report: dict[str, object], key: str) -> list[str]:
    items = report[key]
    assert isinstance(items, list)
    return [str(m["function"]) for m in items]


@pytest.fixture
def ptys(bench: Path) -> Iterator[dict[str, str]]:
    tray = Tray(bench / "tray")
    server = PortServer(tray, time_scale=0)
    paths = server.open()
    tray.publish_ports(paths)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield paths
    server.stop.set()
    thread.join(5)
    server.close()


def test_identify_over_the_pty_then_flash_reflash_change_and_read_the_record(
    bench: Path, ptys: dict[str, str]
) -> None:
    tray = Tray(bench / "tray")
    record = tray.records()[0]
    device = record.device_id
    ident = runner.invoke(app, ["device", "identify", "--port", ptys[device], "--json"])
    assert ident.exit_code == 0, ident.output
    data = json.loads(ident.stdout)
    assert data["device_id"] == device
    assert data["serial_number"] == record.identity.serial_number
    assert data["iccid"] == record.identity.iccid and data["imei"] == record.identity.imei
    assert data["device_os"] == "2.3.1"
    assert "secret" not in ident.stdout.lower()

    code, first = _flash("prod-a", device, "--role", "production")
    assert code == 0 and first["verified"] is True
    assert _functions(first, "written") == ["bootloader", "system part", "user part"]
    assert first["invalidated"]  # the factory's 128 KB Tinker at 0xD4000 was retired

    code, again = _flash("prod-a", device)
    assert code == 0 and again["written"] == [] and again["bytes_written"] == 0

    code, changed = _flash("prod-b", device)
    assert code == 0 and _functions(changed, "written") == ["user part"]

    records = runner.invoke(app, ["device", "records", device, "--json"])
    history = json.loads(records.stdout)
    assert [(r["bundle"], r["status"]) for r in history] == [
        ("prod-b", "done"),
        ("prod-a", "done"),
        ("prod-a", "done"),
    ]
    assert history[-1]["role"] == "production" and history[-1]["verified"] is True
    table = runner.invoke(app, ["device", "records", device])
    assert table.exit_code == 0, table.output
    words = " ".join(table.output.split())  # the table wraps its last column at 80 columns
    assert "retired old 128 KB user part" in words and "user part v8" in words


def test_a_flipped_bit_is_caught_and_the_unit_is_not_flashed(bench: Path) -> None:
    tray = Tray(bench / "tray")
    device = tray.device_ids()[1]
    tray.update_record(device, faults=Faults(flip_bit_on_write=True))
    code, report = _flash("prod-a", device)
    assert code == 6
    assert "read-back differs" in json.dumps(report)
    history = json.loads(runner.invoke(app, ["device", "records", device, "--json"]).stdout)
    assert [r["status"] for r in history] == ["failed"]
    assert history[0]["verified"] is False


def test_a_protected_device_is_refused_and_nothing_is_erased(bench: Path) -> None:
    tray = Tray(bench / "tray")
    device = tray.device_ids()[2]
    tray.update_record(device, faults=Faults(protected=True))
    before = tray.flash_path(device).read_bytes()
    result = runner.invoke(
        app, ["device", "flash", "prod-a", "--virtual", "tray", "--probe", device]
    )
    assert result.exit_code == 6
    assert "APPROTECT" in result.output and "nothing was erased" in result.output
    assert tray.flash_path(device).read_bytes() == before
    history = json.loads(runner.invoke(app, ["device", "records", device, "--json"]).stdout)
    assert history == []


def test_usage_errors_are_one_line_exit_2(bench: Path) -> None:
    for args in (
        ["device", "flash", "prod-a"],  # no backend
        ["device", "flash", "nope", "--virtual", "tray", "--probe", "x"],
        ["device", "flash", "prod-a", "--backend", "warp-drive", "--probe", "x"],
        ["device", "identify"],
        ["device", "flash", "prod-a", "--virtual", "no-such-dir"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output

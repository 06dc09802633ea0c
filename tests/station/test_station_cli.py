"""The station's commands on bad input: one clear line each, documented exit codes, nothing done."""

from __future__ import annotations

import json
from pathlib import Path

from linekit import CONFIG, World, make_bundles, make_line, make_runner
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.store.db import open_store


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_station_run_refuses_a_bad_config_with_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "trayline.toml"
    config.write_text(CONFIG.replace('pattern = "BAT-[0-9]{6}"', 'pattern = "BAT-[0-9"'))
    db = f"sqlite:///{tmp_path / 'x.db'}"
    code, output = _invoke("station", "run", "-c", str(config), "--db", db, "--json")
    assert code == 2
    assert f"{config}:17: parts[0].pattern: not a regular expression" in output
    assert "Traceback" not in output


def test_station_run_refuses_missing_bundles_and_bad_answers(tmp_path: Path) -> None:
    config = tmp_path / "trayline.toml"
    config.write_text(CONFIG)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    code, output = _invoke("station", "run", "-c", str(config), "--db", db, "--json")
    assert code == 2 and "no bundle named 'brn404-test'" in output
    code, output = _invoke("station", "run", "-c", str(config), "--answers", "maybe")
    assert code == 2 and "--answers must be yes or no" in output
    code, output = _invoke("station", "run", "-c", str(config), "--virtual", str(tmp_path))
    assert code == 2 and "not a virtual tray" in output
    (tmp_path / "tray.csv").write_text("Device ID,Serial Number,ICCID\n")
    code, output = _invoke("station", "run", "-c", str(config), "--virtual", str(tmp_path))
    assert code == 2 and "trayline virtual serve" in output


def test_line_init_and_check(tmp_path: Path) -> None:
    config = tmp_path / "trayline.toml"
    assert (
        _invoke("line", "init", "--sku", "BRN404", "--product", "31337", "-c", str(config))[0] == 0
    )
    assert _invoke("line", "init", "--sku", "BRN404", "--product", "1", "-c", str(config))[0] == 2
    code, output = _invoke("line", "check", "-c", str(config))
    assert code == 0 and "BRN404 for product 31337" in output
    code, output = _invoke(
        "line", "init", "--sku", "XYZ", "--product", "1", "-c", str(tmp_path / "b")
    )
    assert code == 2 and "XYZ" in output


def test_units_show_and_list(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'trayline.db'}"
    store = open_store(db)
    make_bundles(store, tmp_path / "bundles")
    world = World()
    unit = world.add(1)
    runner = make_runner(store, make_line(tmp_path), world)
    runner.start()
    for scan in (unit + " SECRETSECRET", "BAT-000001", "ENC-000001"):
        runner.scan(scan)
    assert runner.wait_idle(60)
    runner.stop()
    store.dispose()
    code, output = _invoke("units", "show", "ENC-000001", "--json", "--db", db)
    assert code == 0
    record = json.loads(output)
    assert record["serial_number"] == unit and record["status"] == "ready"
    assert "SECRETSECRET" not in output
    code, output = _invoke("units", "list", "--db", db)
    assert code == 0 and unit in output and max(len(line) for line in output.splitlines()) <= 80
    code, output = _invoke("units", "list", "--status", "ready", "--json", "--db", db)
    assert code == 0 and [u["serial_number"] for u in json.loads(output)] == [unit]
    assert _invoke("units", "show", "NOPE-1", "--db", db)[0] == 1
    assert _invoke("units", "list", "--status", "bogus", "--db", db)[0] == 2

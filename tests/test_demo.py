"""`trayline demo` runs the whole line (station, then provisioning) and ends as expected."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from trayline.cli.app import app


def test_demo_runs_the_whole_line(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    args = ["demo", "--workdir", str(workdir), "--units", "20", "--time-scale", "0", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    station = summary["station"]
    assert station["by_status"] == {"failed": 2, "ready": 18}
    failed = {f["serial_number"]: f["reason"] for f in station["failed"]}
    assert set(failed) == set(summary["by_design"])  # the two units broken by design, no others
    assert any(r.startswith("power: vbat") for r in failed.values())
    assert any(r.startswith("radio: rssi") for r in failed.values())
    assert summary["provisioning"]["states"] == {"provisioned": 18}
    assert (workdir / "trayline.db").exists() and (workdir / "trayline.toml").exists()

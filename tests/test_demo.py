"""`trayline demo` runs the whole provisioning line on a local cloud and ends as expected."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from trayline.cli.app import app


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--workdir", str(workdir), "--devices", "20"])
    assert result.exit_code == 0, result.output
    assert "20 of 22 provisioned, 2 refused" in result.output
    assert (workdir / "trayline.db").exists() and (workdir / "tray-list.csv").exists()

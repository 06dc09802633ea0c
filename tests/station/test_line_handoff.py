"""`provision run --from-line`: ready units provisioned, their cloud state written back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from linekit import CONFIG, World, device_id, make_bundles, make_line, make_runner, serial
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.core.ids import luhn_check_digit
from trayline.particle.emulator import EmulatorConfig, create_app, serve_in_background
from trayline.particle.emulator.factory import FactoryUnit
from trayline.store.db import open_store
from trayline.store.units import find_unit

UNITS = 3


def _unit(n: int) -> FactoryUnit:
    iccid = f"8901{n:014d}"
    imei = f"35{n:012d}"
    return FactoryUnit(
        device_id(n),
        serial(n),
        iccid + luhn_check_digit(iccid),
        imei + luhn_check_digit(imei),
        "SECRET",
        13,
        "BRN404",
        True,
    )


def test_from_line_provisions_ready_units_and_writes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'trayline.db'}"
    store = open_store(url)
    make_bundles(store, tmp_path / "bundles")
    world = World()
    scans = []
    for n in range(1, UNITS + 1):
        scans += [world.add(n), f"BAT-{n:06d}", f"ENC-{n:06d}"]
    low = world.add(9, readings={"vbat": 3.0})
    scans += [low, "BAT-000009", "ENC-000009"]
    runner = make_runner(store, make_line(tmp_path), world)
    runner.start()
    for line in scans:
        runner.scan(line)
    assert runner.wait_idle(60)
    runner.stop()
    store.dispose()

    cloud_app = create_app(EmulatorConfig(seed=1))
    cloud_app.cloud.add_product(31337, "line-product", platform_id=13)
    token = cloud_app.cloud.add_token("engineer@example.com")
    cloud_app.cloud.add_units([_unit(n) for n in (*range(1, UNITS + 1), 9)])
    config = tmp_path / "trayline.toml"
    assert config.read_text() == CONFIG
    with serve_in_background(cloud_app) as api:
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", token)
        monkeypatch.setenv("PARTICLE_API_URL", api)
        args = ["provision", "run", "--from-line", "-c", str(config), "--db", url, "--json"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0 and "nothing to do" in again.output

    group = f"{datetime.now(UTC):%Y%m%d}_0001"
    store = open_store(url)
    for n in range(1, UNITS + 1):
        unit = find_unit(store, serial(n))
        assert unit is not None and unit.cloud is not None
        assert unit.cloud["state"] == "provisioned" and unit.cloud["group"] == group
        assert unit.cloud["product"] == "31337" and unit.cloud["name"] == serial(n)
    failed = find_unit(store, low)
    assert failed is not None and failed.status == "failed" and failed.cloud is None
    store.dispose()
    handed = (tmp_path / "handoff" / f"{group}.csv").read_text().splitlines()
    assert len(handed) == UNITS + 1  # header + the ready units only
    device = cloud_app.cloud.find_device(device_id(1))
    assert device is not None and device.name == serial(1)

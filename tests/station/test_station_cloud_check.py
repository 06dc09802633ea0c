"""The plan's cloud_online step through the station: online passes, offline fails, China skips."""

from __future__ import annotations

from pathlib import Path

from linekit import CONFIG, World, device_id, make_bundles, make_line, serial
from test_line_handoff import _unit

from trayline.particle.auth import AccessToken
from trayline.particle.emulator import EmulatorConfig, create_app, serve_in_background
from trayline.station.connectivity import ParticleCloudPresence
from trayline.station.plantester import plan_tester
from trayline.station.prompts import ScriptedPrompts
from trayline.station.record import unit_record
from trayline.station.runner import Runner
from trayline.station.worker import UnitWork
from trayline.store.db import Store
from trayline.store.units import find_unit

STEP = """
[[test_plan.steps]]
name = "online"
kind = "cloud_online"
timeout_s = 0.5
poll_interval_s = 0.1
"""


def _run(
    store: Store,
    tmp_path: Path,
    text: str,
    presence: ParticleCloudPresence,
    numbers: tuple[int, ...] = (1, 2),
) -> World:
    world = World()
    scans = []
    for n in numbers:
        scans += [world.add(n), f"BAT-{n:06d}", f"ENC-{n:06d}"]
    line = make_line(tmp_path, text)
    work = UnitWork(
        store=store,
        config=line.config,
        owner="st1/test/1/cloud",
        operator=None,
        tester=plan_tester(
            line, world.channel, prompts=ScriptedPrompts(default=True), cloud_check=presence
        ),
        opener=world.open,
        locate=world.locate,
    )
    runner = Runner(work, tray=world.tray)
    runner.start()
    for scan in scans:
        runner.scan(scan)
    assert runner.wait_idle(60)
    runner.stop()
    return world


def test_online_device_passes_offline_fails_and_china_skips(store: Store, tmp_path: Path) -> None:
    make_bundles(store, tmp_path / "bundles")
    app = create_app(EmulatorConfig(seed=1))
    product = app.cloud.add_product(31337, "line-product", platform_id=13)
    token = AccessToken(app.cloud.add_token("engineer@example.com"))
    app.cloud.add_units([_unit(1)], product, online=True)
    app.cloud.add_units([_unit(2)], product, online=False)
    text = CONFIG.replace("\n[slots.A]", STEP + "\n[slots.A]")
    with serve_in_background(app) as url:
        presence = ParticleCloudPresence.connect(token, "31337", base_url=url)
        _run(store, tmp_path, text, presence)
        online, offline = find_unit(store, serial(1)), find_unit(store, serial(2))
        assert online is not None and online.status == "ready"
        assert offline is not None and offline.status == "failed"
        assert (offline.reason or "").startswith("online:")
        record = unit_record(store, online)
        steps = {m["name"]: m for m in record["attempts"][0]["measurements"]}
        assert steps["online"]["verdict"] == "pass"
        assert device_id(1) == online.device_id

        china = tmp_path / "china"
        china.mkdir()
        text_cn = text.replace('country = "US"', 'country = "CN"').replace(
            'station = "st1"', 'station = "cn"'
        )
        assert "Cat M1" in make_line(china, text_cn).config.warnings[0]
        _run(store, china, text_cn, presence, numbers=(3,))  # not in the cloud at all
        skipped = find_unit(store, serial(3))
        assert skipped is not None and skipped.status == "ready", skipped

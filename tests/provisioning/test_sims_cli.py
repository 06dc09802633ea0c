"""`trayline sims`: the budget-spent message at once, --wait-for-budget, activation intents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloudkit import PRODUCT, TOKEN, make_cloud
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.particle.auth import AccessToken
from trayline.particle.emulator import EmulatorConfig, serve_in_background
from trayline.store.audit import StoreSerialBudget
from trayline.store.db import open_store


def env_for(url: str, db: str) -> dict[str, str]:
    return {
        "PARTICLE_ACCESS_TOKEN": TOKEN,
        "PARTICLE_API_URL": url,
        "TRAYLINE_DATABASE_URL": db,
        "TRAYLINE_RATE_LIMIT": "100000/1",
    }


def test_budget_spent_in_the_store_is_said_at_once(db_url: str) -> None:
    cloud = make_cloud()
    device = cloud.app.cloud.make_devices("BRN404", 1)[0]
    store = open_store(db_url)
    budget = StoreSerialBudget(store)
    first = datetime.now(UTC) - timedelta(minutes=59, seconds=50)
    for n in range(50):
        budget.record(AccessToken(TOKEN).fingerprint, f"P028X{n:010d}", first)
    store.dispose()
    with serve_in_background(cloud.app) as url:
        before = cloud.app.counters.to_dict()["requests"]
        result = CliRunner().invoke(
            app, ["sims", "lookup", device.serial_number, "--json"], env=env_for(url, db_url)
        )
        assert cloud.app.counters.to_dict()["requests"] == before, "nothing sent"
    assert result.exit_code == 1, result.output
    assert "budget spent" in result.stderr and "UTC" in result.stderr
    assert "--wait-for-budget" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["lookups_left_this_hour"] == 0 and "budget_refills_at" in doc


def test_cloud_side_429_is_said_at_once_then_waited_for_on_request(tmp_path: Path) -> None:
    """The cloud's own count (another tool used the budget) answers 429: trayline says when it
    refills instead of sleeping; with --wait-for-budget it counts down and goes on."""
    cloud = make_cloud(EmulatorConfig(seed=2, serial_lookup_limit=(1, 2.0)))
    a, b = cloud.app.cloud.make_devices("BRN404", 2)
    db = f"sqlite:///{tmp_path / 't.db'}"
    with serve_in_background(cloud.app) as url:
        env = env_for(url, db)
        stopped = CliRunner().invoke(
            app, ["sims", "lookup", a.serial_number, b.serial_number, "--json"], env=env
        )
        assert stopped.exit_code == 1, stopped.output
        assert "budget spent" in stopped.stderr
        assert [r["device_id"] for r in json.loads(stopped.stdout)["results"]] == [a.id]
        waited = CliRunner().invoke(
            app, ["sims", "lookup", b.serial_number, "--json", "--wait-for-budget"], env=env
        )
        assert waited.exit_code == 0, waited.output
        assert "waiting" in waited.stderr or "refilled" in waited.stderr
        assert json.loads(waited.stdout)["results"][0]["device_id"] == b.id


def test_activation_writes_intent_and_result(tmp_path: Path) -> None:
    cloud = make_cloud()
    iccids = [d.iccid for d in cloud.app.cloud.make_devices("BRN404", 150)]
    path = tmp_path / "sims.txt"
    path.write_text("\n".join(iccids) + "\n")
    db = f"sqlite:///{tmp_path / 't.db'}"
    with serve_in_background(cloud.app) as url:
        result = CliRunner().invoke(
            app,
            ["sims", "activate", "--product", str(PRODUCT), "--input", str(path)],
            env=env_for(url, db),
        )
    assert result.exit_code == 0, result.output
    assert "150 SIMs sent" in result.stdout
    assert all(cloud.app.cloud.sims[i].product_id == PRODUCT for i in iccids)
    store = open_store(db)
    from sqlalchemy import select

    from trayline.store.models import Event

    with store.session() as session:
        kinds = [e for e in session.scalars(select(Event.kind).where(Event.source == "sims"))]
    store.dispose()
    assert kinds == ["sims.activate.sent", "sims.activate.done"] * 2  # two chunks of <= 100


def test_provision_run_says_at_once_when_the_lookup_budget_is_spent(tmp_path: Path) -> None:
    """Refused serials are diagnosed with serial lookups; with the budget spent the run says
    so (and when it refills) and finishes without the detail instead of waiting."""
    cloud = make_cloud()
    good = cloud.app.cloud.make_devices("BRN404", 3)
    db = f"sqlite:///{tmp_path / 't.db'}"
    store = open_store(db)
    budget = StoreSerialBudget(store)
    for n in range(50):
        budget.record(AccessToken(TOKEN).fingerprint, f"P028X{n:010d}", datetime.now(UTC))
    store.dispose()
    path = tmp_path / "tray.txt"
    path.write_text("\n".join([d.serial_number for d in good] + ["P028ZZZZZZZZZZZ"]) + "\n")
    with serve_in_background(cloud.app) as url:
        result = CliRunner().invoke(
            app,
            ["provision", "run", "--product", str(PRODUCT), "--input", str(path), "--json"],
            env=env_for(url, db),
        )
    assert result.exit_code == 1, result.output
    assert "serial-lookup budget spent" in result.stderr and "refills at" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["outcome"]["provisioned"] == 3 and doc["outcome"]["failed"] == 1

"""``trayline demo``: a whole provisioning run on a local cloud, with nothing to set up.

It starts the local Particle Cloud on a free loopback port, creates a Boron
product and a token, manufactures a tray of 50 BRN404 devices (plus two that
will be refused: one already in another product, one unknown ID), writes the
tray list a wholesale order comes with, and provisions it exactly as
``trayline provision run`` would — group, import, rename, verify — into a fresh
SQLite database in ``--workdir``. Then it prints the report. Nothing leaves the
machine.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
from pathlib import Path

import typer
from rich.table import Table

from trayline.cli.console import fail, out
from trayline.inputs import read_inputs
from trayline.particle.auth import AccessToken
from trayline.particle.client import ParticleClient
from trayline.particle.emulator import EmulatorConfig, create_app, serve_in_background
from trayline.particle.ratelimit import RateLimit, RateLimiter
from trayline.provisioning.engine import EngineOptions, Outcome, open_job, run_job
from trayline.provisioning.journal import JobSpec
from trayline.reports.provisioning import job_report
from trayline.store.audit import StoreAudit
from trayline.store.db import open_store

DEMO_PRODUCT = 31337
OTHER_PRODUCT = 31338


def demo_command(
    workdir: Path = typer.Option(
        Path("trayline-demo"), "--workdir", help="Folder for the demo's database and tray list."
    ),
    devices: int = typer.Option(50, "--devices", min=1, max=10_000, help="Tray size."),
    rate_limit: str = typer.Option(
        "300/1", "--rate-limit", help="The local cloud's rate limit (REQUESTS/SECONDS)."
    ),
    seed: int = typer.Option(2026, "--seed", help="Random seed for the manufactured devices."),
) -> None:
    """Provision a tray of BRN404 devices against a local Particle Cloud and print the report.

    Example: trayline demo --devices 200
    """
    try:
        limit = RateLimit.parse(rate_limit)
    except ValueError as exc:
        fail(str(exc))
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)

    app = create_app(EmulatorConfig(seed=seed, rate_limit=(limit.requests, limit.seconds)))
    cloud = app.cloud
    cloud.add_product(DEMO_PRODUCT, "demo-boron-tracker", platform_id=13, name="Demo Boron product")
    cloud.add_product(OTHER_PRODUCT, "someone-elses-product", platform_id=13)
    token = AccessToken(cloud.add_token("line-engineer@example.com"))
    tray = cloud.make_devices("BRN404", devices)
    stray = cloud.make_devices("BRN404", 1, product_id=OTHER_PRODUCT)

    tray_list = workdir / "tray-list.csv"
    with tray_list.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Device ID", "Serial Number", "ICCID"])
        for unit in tray:
            writer.writerow([unit.id, unit.serial_number, unit.iccid])
        writer.writerow([stray[0].id, stray[0].serial_number, stray[0].iccid])
        writer.writerow(["0badc0de0badc0de0badc0de", "", ""])
    inputs = read_inputs(tray_list)
    inputs.raise_if_invalid()

    store = open_store(f"sqlite:///{workdir / 'trayline.db'}")
    spec = JobSpec(
        product=str(DEMO_PRODUCT),
        group=None,
        group_auto=True,
        naming=True,
        claim_mode="none",
        claim_user=None,
        input_path=str(tray_list),
    )
    options = EngineOptions()
    journal, _ = open_job(store, spec, inputs.devices, options)
    audit = StoreAudit(store, job_id=journal.job_id)

    with serve_in_background(app) as url:
        out.print(f"trayline cloud listening on {url} (local, loopback only)")
        out.print(
            f"manufactured {devices} BRN404 devices (+1 in another product, +1 unknown ID); "
            f"tray list: {tray_list}"
        )

        async def go() -> Outcome:
            async with ParticleClient(
                token, base_url=url, limiter=RateLimiter(limit), observers=[audit]
            ) as client:
                return await run_job(client, journal, options, on_step_done=audit.flush)

        outcome = asyncio.run(go())
    audit.flush()

    rows = job_report(store, journal.job_id)
    group = journal.job().group_name
    store.dispose()
    table = Table(title=f"Job {journal.job_id}: product {DEMO_PRODUCT}, group {group}")
    for col in ("line", "device ID", "serial", "state", "reason"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            str(row.line),
            row.device_id or row.identifier,
            row.serial_number or "",
            row.state,
            row.reason or "",
        )
    out.print(table)
    counts = outcome.counts
    out.print(
        f"{counts['provisioned']} of {counts['devices']} provisioned, {counts['failed']} refused "
        f"(expected: the 2 strays); {outcome.requests} requests in {outcome.elapsed_s:.2f} s "
        f"({outcome.requests / max(counts['devices'], 1):.2f} per device)"
    )
    out.print(
        f"database: {workdir / 'trayline.db'} — try: trayline provision report "
        f"{journal.job_id} --db sqlite:///{workdir / 'trayline.db'}"
    )
    if outcome.stopped or counts["provisioned"] != devices or counts["failed"] != 2:
        fail("the demo line did not end as expected", exit_code=1)

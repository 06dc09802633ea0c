"""``trayline demo``: the whole line on a fresh clone — station, then provisioning — in a minute.

It makes a virtual tray of BRN404 units (``trayline.virtual``) and serves a
serial port per unit, builds a test and a production bundle from generated
Device OS modules (the test user part carries ``trayline-testfw``, so the
virtual units answer the test-firmware protocol), writes a ``trayline.toml``
with four virtual slots, and feeds the station the scans an operator would
make: each sticker, its battery and its enclosure barcode — plus a few
mistakes (an unknown barcode, a sticker scanned twice, a battery already used).
A few units fail by design, each for another reason (``devices.json``: a low
battery, a weak radio, a console that never answers, a flash that does not
verify; the order's tray list names the wrong device for one serial).
Then the passing units are provisioned into a product of a local Particle
Cloud on loopback through the ordinary engine and journal, and each unit's
cloud state is written back. The summary gives yield, failures by reason,
time per unit and units per hour. Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from trayline.cli.console import fail, out
from trayline.core.skus import Sku, get_sku
from trayline.firmware.bundle import create_bundle
from trayline.particle.auth import AccessToken
from trayline.particle.client import ParticleClient
from trayline.particle.emulator import EmulatorConfig, create_app, serve_in_background
from trayline.particle.emulator.factory import FactoryUnit
from trayline.particle.ratelimit import RateLimit, RateLimiter
from trayline.provisioning.engine import EngineOptions, Outcome, open_job, run_job
from trayline.provisioning.journal import CloudIdentity
from trayline.station.assembly import StationOptions, build_runner
from trayline.station.handoff import line_job, write_back
from trayline.station.line import Line, load_line
from trayline.station.prompts import ScriptedPrompts
from trayline.station.runner import Runner
from trayline.store.db import Store, open_store
from trayline.virtual.factory import factory_device_os, factory_modules, user_part
from trayline.virtual.records import DeviceRecord
from trayline.virtual.tray import Tray

DEMO_PRODUCT = 31337
SKU = "BRN404"
NORMAL = {
    "vbat": {"mean": 3.95, "sd": 0.03, "unit": "V"},
    "temp": {"mean": 24.0, "sd": 0.8, "unit": "C"},
    "radio.rssi": {"mean": -71.0, "sd": 3.0, "unit": "dBm"},
}
BY_DESIGN: dict[int, tuple[str, dict[str, dict[str, object]]]] = {
    7: ("low battery", {"readings": {**NORMAL, "vbat": 3.31}}),
    19: ("weak radio", {"readings": {**NORMAL, "radio.rssi": -118}}),
    31: ("console never answers", {"faults": {"never_answers": True}}),
    37: ("flash does not verify", {"faults": {"flip_bit_on_write": True}}),
    43: ("wrong device in the order's tray list", {}),
}
"""Unit number → (what is wrong, devices.json changes)."""

CONFIG = """\
# trayline.toml written by `trayline demo` (see docs/line-config.md)
[line]
product = "{product}"
sku = "{sku}"
station = "demo-station"
retest_limit = 1

[site]
country = "US"

[bundles]
test = "demo-test"
production = "demo-production"

[[parts]]
name = "battery"
pattern = "BAT-[0-9]{{8}}"

[[parts]]
name = "enclosure"
pattern = "ENC-[0-9]{{8}}"

[test_plan]
timeout_s = 2

[[test_plan.steps]]
name = "power"
kind = "measure"
measurements = [
  {{ name = "vbat", unit = "V", low = 3.6, high = 4.3 }},
  {{ name = "temp", unit = "C", low = 10, high = 45 }},
]

[[test_plan.steps]]
name = "radio"
kind = "run"
measurements = [{{ name = "rssi", unit = "dBm", low = -105 }}]

[provisioning]
group = "{{date:%Y%m%d}}_{{count:04d}}"
naming = true
claim = "none"
{slots}"""


def make_demo_tray(
    folder: Path, sku: Sku, units: int, seed: int
) -> tuple[Tray, list[DeviceRecord]]:
    tray = Tray.create(folder, sku, units, seed=seed)
    records = tray.records()
    for n, record in enumerate(records, start=1):
        _, changes = BY_DESIGN.get(n, ("", {}))
        readings = dict(changes.get("readings", NORMAL))
        faults = record.faults
        for name, value in changes.get("faults", {}).items():
            setattr(faults, name, value)
        tray.update_record(record.device_id, readings=readings, faults=faults)
    return tray, tray.records()


def make_demo_bundles(store: Store, folder: Path, sku: Sku) -> None:
    """Test and production bundles: the factory's Device OS plus our own user parts."""
    release = factory_device_os(sku)
    system = factory_modules(sku.platform_id, release)[:-1]  # all but the factory's Tinker
    roles = {
        "test": user_part(sku.platform_id, release, test_firmware=True, version=7),
        "production": user_part(sku.platform_id, release, version=8),
    }
    for role, user in roles.items():
        role_dir = folder / role
        role_dir.mkdir(parents=True)
        files = []
        for i, data in enumerate([*system, user]):
            path = role_dir / f"{i}-{'user' if data is user else 'system'}.bin"
            path.write_bytes(data)
            files.append(path)
        create_bundle(store, name=f"demo-{role}", sku=sku, files=files, role=role, line="demo")


def _order_list(path: Path, records: list[DeviceRecord]) -> None:
    """The tray list as the order says it: one serial is paired with a device ID not on the tray."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Device ID", "Serial Number", "ICCID"])
        for n, r in enumerate(records, start=1):
            ident = r.identity
            device_id = "e00fce68deadbeef00c0ffee" if n == 43 else ident.device_id
            writer.writerow([device_id, ident.serial_number, ident.iccid])


def demo_scans(tray: Tray) -> list[str]:
    """What the operator scans: sticker, battery, enclosure per unit, and a few mistakes."""
    stickers = (tray.folder / "stickers.txt").read_text().split("\n")
    scans: list[str] = []
    for n, sticker in enumerate([s for s in stickers if s.strip()], start=1):
        scans += [sticker, f"BAT-{n:08d}", f"ENC-{n:08d}"]
        if n == 3:
            scans.append("HELLO-WORLD")  # a barcode off the wrong label
        if n == 5:
            scans.append(sticker)  # the same sticker twice
        if n == 9:
            scans += [stickers[9], "BAT-00000002"]  # the next unit with a battery already used
    return scans


@contextmanager
def served_tray(folder: Path, count: int, time_scale: float) -> Iterator[None]:
    """``trayline virtual serve`` in a child process, until every unit's port is up."""
    argv = [sys.executable, "-m", "trayline", "virtual", "serve", str(folder)]
    proc = subprocess.Popen(
        [*argv, "--time-scale", str(time_scale)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        ports = folder / "ports.json"
        while True:
            try:
                if len(json.loads(ports.read_text())) >= count:
                    break
            except (OSError, ValueError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                problem = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
                fail(f"the virtual tray's serial ports did not come up: {problem.strip()}", 6)
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run_station(runner: Runner, scans: list[str]) -> dict[str, Any]:
    runner.start()
    for line in scans:
        runner.scan(line)
    runner.wait_idle()
    runner.stop()
    return runner.summary()


def _provision(store: Store, line: Line, records: list[DeviceRecord]) -> dict[str, Any]:
    """Hand the ready units to a local cloud's product, the way `provision run --from-line` does."""
    app = create_app(EmulatorConfig(seed=1, rate_limit=(1000, 1)))
    cloud = app.cloud
    cloud.add_product(DEMO_PRODUCT, "demo-boron-tracker", platform_id=13, name="Demo product")
    token = AccessToken(cloud.add_token("line-engineer@example.com"))
    cloud.add_units(
        FactoryUnit(
            r.identity.device_id,
            r.identity.serial_number,
            r.identity.iccid,
            r.identity.imei,
            r.identity.mobile_secret or "",
            r.identity.platform_id,
            r.identity.sku,
            True,
        )
        for r in records
    )
    spec, inputs = line_job(store, line.config)
    options = EngineOptions()
    started = time.perf_counter()
    with serve_in_background(app) as url:
        journal, _ = open_job(
            store, spec, CloudIdentity(url, "line-engineer@example.com"), inputs, options
        )

        async def go() -> Outcome:
            limiter = RateLimiter(RateLimit(1000, 1))
            async with ParticleClient(token, base_url=url, limiter=limiter) as client:
                return await run_job(client, journal, options)

        outcome = asyncio.run(go())
    counts = write_back(store, line.config, journal.job_id, spec.group)
    return {
        "job_id": journal.job_id,
        "group": spec.group,
        "devices": len(inputs),
        "states": counts,
        "requests": outcome.requests,
        "seconds": round(time.perf_counter() - started, 2),
    }


def slots_toml(count: int) -> str:
    return "".join(f'\n[slots.{chr(65 + i)}]\nbackend = "virtual"\n' for i in range(count))


def demo_command(
    workdir: Path = typer.Option(
        Path("trayline-demo"), "--workdir", help="Folder for the demo's tray, database and files."
    ),
    units: int = typer.Option(50, "--units", "--devices", min=1, max=1000, help="Tray size."),
    slots: int = typer.Option(4, "--slots", min=1, max=16, help="Station slots in parallel."),
    time_scale: float = typer.Option(
        0.02, "--time-scale", min=0, help="Real seconds per simulated device second."
    ),
    seed: int = typer.Option(2026, "--seed", help="Random seed for the tray."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run the whole line on a virtual tray: scan, link parts, flash, test, verify, provision.

    Example: trayline demo --units 50 --slots 4
    """
    started = time.perf_counter()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    sku = get_sku(SKU)
    tray, records = make_demo_tray(workdir / "tray", sku, units, seed)
    with open_store(f"sqlite:///{workdir / 'trayline.db'}") as store:
        make_demo_bundles(store, workdir / "firmware", sku)
        config = workdir / "trayline.toml"
        config.write_text(CONFIG.format(product=DEMO_PRODUCT, sku=SKU, slots=slots_toml(slots)))
        order = workdir / "order-tray-list.csv"
        _order_list(order, records)
        line = load_line(config)
        if not as_json:
            out.print(
                f"virtual tray of {units} {SKU} in {tray.folder}; {slots} slots; "
                f"time scale {time_scale}; station database {workdir / 'trayline.db'}"
            )
        options = StationOptions(
            virtual_dir=tray.folder, tray_file=order, operator="demo", time_scale=time_scale
        )
        with served_tray(tray.folder, units, time_scale):
            runner = build_runner(
                store,
                line,
                options,
                prompts=ScriptedPrompts(default=True),
            )
            station = _run_station(runner, demo_scans(tray))
        provisioning = _provision(store, line, records)
    summary = {
        "station": station,
        "provisioning": provisioning,
        "total_seconds": round(time.perf_counter() - started, 2),
        "time_scale": time_scale,
        "by_design": {
            records[n - 1].identity.serial_number: why
            for n, (why, _) in BY_DESIGN.items()
            if n <= len(records)
        },
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, workdir)
    ready = station["by_status"].get("ready", 0)
    expected_failures = sum(1 for n in BY_DESIGN if n <= units)
    if provisioning["states"].get("provisioned", 0) != ready or ready + expected_failures != units:
        fail("the demo line did not end as expected", exit_code=1)


def _print_summary(summary: dict[str, Any], workdir: Path) -> None:
    station, prov = summary["station"], summary["provisioning"]
    by = station["by_status"]
    table = Table(title="Failures by reason", title_justify="left")
    table.add_column("units", justify="right")
    table.add_column("reason")
    for reason, count in station["failures_by_reason"].items():
        table.add_row(str(count), reason)
    out.print(table)
    for item in station["failed"]:
        out.print(f"  [red]FAIL[/red] {item['serial_number']}: {item['reason']}")
    out.print("operator messages (refusals and warnings):")
    for message in station["messages"]:
        if message["level"] in ("warn", "error") and " FAIL on " not in message["text"]:
            out.print(f"  {message['text']}")
    out.print(
        f"station: {station['units']} units, {by.get('ready', 0)} ready, "
        f"{by.get('failed', 0)} failed — yield {station['yield']:.0%}; "
        f"{station['seconds_per_unit']} s per unit in a slot, "
        f"{station['units_per_hour']} units/hour on {station['slots']} slots "
        f"({station['elapsed_s']} s; simulated device time runs at x{summary['time_scale']} "
        "of real time)"
    )
    out.print(
        f"provisioning: {prov['states'].get('provisioned', 0)} of {prov['devices']} ready units "
        f"provisioned into product {DEMO_PRODUCT}, group {prov['group']} "
        f"({prov['requests']} requests, {prov['seconds']} s)"
    )
    out.print(f"whole line: {summary['total_seconds']} s")
    out.print(
        f"try: trayline units list --db sqlite:///{workdir / 'trayline.db'}   |   "
        f"trayline units show BAT-00000001 --db sqlite:///{workdir / 'trayline.db'}"
    )

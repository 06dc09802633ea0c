"""``trayline virtual``: make a tray of simulated devices and give each a real serial port.

``trayline virtual tray`` writes a tray folder (tray list, stickers, the
``devices.json`` contract, one flash image per device); ``trayline virtual
serve`` opens a pseudo-terminal per device and keeps it answering until
stopped; ``trayline virtual show`` prints what each device holds now. Every
other command reaches the devices with ``--virtual DIR``. See docs/virtual.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from trayline.cli.console import err, fail, out
from trayline.core.modules import function_name, parse_module
from trayline.core.skus import UnknownSku, get_sku
from trayline.core.versions import InvalidVersion, SemVer
from trayline.virtual.device import DeviceMode
from trayline.virtual.factory import factory_device_os, factory_modules, user_part
from trayline.virtual.records import TrayFileError
from trayline.virtual.serial_port import PortServer
from trayline.virtual.timing import time_scale_from_env
from trayline.virtual.tray import FactoryOptions, Tray

app = typer.Typer(
    help=(
        "Simulated Particle devices: make a virtual tray, serve its serial ports.\n\n"
        "Example: trayline virtual tray --sku BRN404 --count 5 --dir ./tray"
    ),
    no_args_is_help=True,
)

EXIT_BUSY = 5


@app.command("tray")
def tray_command(
    sku: str = typer.Option(..., "--sku", help="Catalog SKU of every device (trayline skus)."),
    count: int = typer.Option(
        ..., "--count", min=1, max=1000, help="How many devices (1 MiB of flash image each)."
    ),
    folder: Path = typer.Option(
        ..., "--dir", help="Folder to create the tray in (must not hold one)."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Same seed, same devices (IDs, serials, secrets)."
    ),
    device_os: str | None = typer.Option(
        None, "--device-os", help="Device OS in the factory image (default: per SKU, see docs)."
    ),
    blank: bool = typer.Option(
        False, "--blank", help="Erased flash instead of Device OS + Tinker."
    ),
    mode: DeviceMode | None = typer.Option(
        None, "--mode", help="Start mode instead of the boot rule (normal, listening, dfu, safe)."
    ),
) -> None:
    """Make a virtual tray: tray.csv, stickers.txt, devices.json and a flash image per device.

    Example: trayline virtual tray --sku BRN404 --count 5 --dir ./tray --seed 7
    """
    try:
        chosen = get_sku(sku)
    except UnknownSku as exc:
        fail(f"--sku: {exc}")
    options = FactoryOptions(device_os=device_os, blank=blank, mode=mode)
    try:
        tray = Tray.create(folder, chosen, count, seed=seed, options=options)
    except (TrayFileError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{folder}: cannot write the tray ({exc.strerror or exc})")
    out.print(
        f"{count} virtual {chosen.name} in {tray.folder} (tray.csv, stickers.txt, devices.json)"
    )


@app.command("firmware")
def firmware_command(
    sku: str = typer.Option(..., "--sku", help="Catalog SKU the modules are built for."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the .bin files into."),
    device_os: str | None = typer.Option(
        None, "--device-os", help="Device OS of the system modules (default: the tray's)."
    ),
    user_version: int = typer.Option(
        6, "--user-version", min=1, max=65535, help="Version of the user part."
    ),
    test_firmware: bool = typer.Option(
        False,
        "--test-firmware",
        help="Make the user part a test firmware (speaks the station's "
        "JSON-lines protocol on a virtual device).",
    ),
) -> None:
    """Write a consistent module set for a SKU (rehearsal firmware, real module format).

    Bootloader, SoftDevice (Gen 3), system part(s) and a user part, with valid
    CRCs, SHA-256s and dependencies, as `trayline firmware bundle create` and
    virtual devices expect. For rehearsals and tests only: the bodies are not
    Device OS code, so never flash them to hardware.

    Example: trayline virtual firmware --sku BRN404 --out fw --user-version 7
    """
    try:
        chosen = get_sku(sku)
        release = SemVer.parse(device_os) if device_os else factory_device_os(chosen)
        system = factory_modules(chosen.platform_id, release)[:-1]  # all but Tinker
        user = user_part(
            chosen.platform_id, release, test_firmware=test_firmware, version=user_version
        )
    except UnknownSku as exc:
        fail(f"--sku: {exc}")
    except (InvalidVersion, ValueError) as exc:
        fail(f"--device-os: {exc}")
    written = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for data in [*system, user]:
            module = parse_module(data)
            name = f"{(function_name(module.function) or 'module').replace(' ', '-')}"
            path = out_dir / f"{name}-{module.index}-v{module.version}.bin"
            path.write_bytes(data)
            written.append(path.name)
    except OSError as exc:
        fail(f"{out_dir}: cannot write ({exc.strerror or exc})")
    out.print(f"{chosen.name} Device OS {release}: {', '.join(written)} in {out_dir}")


def _open_tray(folder: Path) -> Tray:
    tray = Tray(folder)
    try:
        tray.records()
    except TrayFileError as exc:
        fail(str(exc))
    return tray


def _serve_lock(tray: Tray) -> int:
    """Hold ``DIR/.serve.lock`` so a second ``serve`` of the same tray stops at once (exit 5)."""
    fd = os.open(tray.folder / ".serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        fail(f"{tray.folder}: another `trayline virtual serve` is running this tray", EXIT_BUSY)
    return fd


@app.command("serve")
def serve_command(
    folder: Path = typer.Argument(..., help="The tray folder (from trayline virtual tray)."),
    time_scale: float | None = typer.Option(
        None,
        "--time-scale",
        min=0,
        help="Real seconds per simulated second (default "
        "TRAYLINE_VIRTUAL_TIME_SCALE, else 1; 0 = no waiting).",
    ),
) -> None:
    """Run the tray's devices until stopped: one serial port (pseudo-terminal) per device.

    Prints `DEVICE_ID SERIAL PTY_PATH` per device once its port is up, and writes
    DIR/ports.json for other processes. Stop with Ctrl-C or SIGTERM (exit 130/143).

    Example: trayline virtual serve ./tray
    """
    tray = _open_tray(folder)
    try:
        scale = time_scale if time_scale is not None else time_scale_from_env()
    except ValueError as exc:
        fail(str(exc))
    lock = _serve_lock(tray)
    server = PortServer(tray, time_scale=scale)
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        server.stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            paths = server.open()
        except OSError as exc:
            fail(
                f"{tray.folder}: cannot open a serial port per device ({exc.strerror or exc}); "
                f"serve fewer devices or raise `ulimit -n`"
            )
        tray.publish_ports(paths)
        for record in tray.records():
            path = paths[record.device_id]
            sys.stdout.write(f"{record.device_id} {record.identity.serial_number} {path}\n")
        sys.stdout.flush()
        server.serve()
    finally:
        server.close()
        tray.publish_ports({})
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(lock)
    if received:
        err.print(f"stopped ({signal.Signals(received[0]).name})")
        raise typer.Exit(128 + received[0])


@app.command("show")
def show_command(
    folder: Path = typer.Argument(..., help="The tray folder."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per device, as a list."),
) -> None:
    """Show each device: mode, Device OS, modules in flash, faults and serial port.

    Example: trayline virtual show ./tray --json
    """
    tray = _open_tray(folder)
    ports = tray.ports()
    rows: list[dict[str, Any]] = []
    try:
        for record in tray.records():
            device = tray.load(record.device_id)
            release = device.device_os()
            rows.append(
                {
                    "device_id": record.device_id,
                    "serial_number": record.identity.serial_number,
                    "sku": record.identity.sku,
                    "mode": str(device.mode),
                    "device_os": str(release) if release else None,
                    "setup_done": device.setup_done,
                    "test_firmware": device.runs_test_firmware(),
                    "modules": [
                        f"{function_name(m.function)} {m.index} v{m.version}"
                        + ("" if m.valid else " (INVALID)")
                        for m in device.modules()
                    ],
                    "faults": {k: v for k, v in record.faults.to_dict().items() if v},
                    "port": ports.get(record.device_id),
                }
            )
    except TrayFileError as exc:
        fail(str(exc))
    if as_json:
        out.print(json.dumps(rows, indent=2))
        return
    for row in rows:
        faults = ", ".join(f"{k}={v}" for k, v in row["faults"].items()) or "no faults"
        out.print(
            f"{row['device_id']} {row['serial_number']} {row['mode']} "
            f"Device OS {row['device_os'] or '-'}; {'; '.join(row['modules']) or 'no modules'}; "
            f"{faults}; port {row['port'] or '-'}"
        )

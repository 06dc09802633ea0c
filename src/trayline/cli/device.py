"""``trayline device``: find, identify, flash and finish Particle devices, one at a time.

These are the commands an engineer uses at the bench while setting a line up
(the station drives the same services for many slots at once): which probes and
ports are attached, who is this device (from silicon or its console), put this
bundle on it — writing only what differs — and read back what was recorded.

Every command reaches virtual devices with ``--virtual DIR`` (a tray made by
``trayline virtual tray``), the same way it reaches hardware.

Exit codes: 0 done; 2 bad usage or configuration (unknown backend, bad option,
unknown bundle); 4 the store cannot be opened; 6 the device or programmer
failed (no probe, protected chip, verify failed, no answer) — the message
names the probe or port.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from trayline.cli.console import EXIT_USAGE, err, fail, out
from trayline.cli.options import DbOption, open_db
from trayline.cli.usb_commands import (
    StickerOption,
    UsbOption,
    identify_usb_command,
    list_usb_command,
    udev_rules_command,
    usb_platform,
)
from trayline.console.errors import ConsoleError
from trayline.devices.identify import IdentifyResult, identify_on_port, identify_with_programmer
from trayline.devices.reach import BackendChoice, platform_for, reach
from trayline.firmware.bundle import BundleError, get_bundle
from trayline.firmware.flashing import FlashFailed, flash_bundle
from trayline.programmers.base import ProgrammerError, SupportsSetupDone
from trayline.store.flash_records import flash_records_for_device

EXIT_DEVICE = 6

app = typer.Typer(
    help=(
        "Find, identify and flash Particle devices through any programmer backend.\n\n"
        "Example: trayline device flash prod-6.1.1 --backend openocd --probe 0D28ABC123"
    ),
    no_args_is_help=True,
)

VirtualOption = typer.Option(
    None,
    "--virtual",
    help="A virtual tray directory (from `trayline virtual tray`): reach its devices instead.",
)
BackendOption = typer.Option(
    None,
    "--backend",
    "-b",
    help="Programmer backend: openocd, nrfjprog, jlink, pyocd, particle-usb, daplink-drive, "
    "stm32-programmer, usb, dfu-util, virtual (the default with --virtual).",
)
ProbeOption = typer.Option(
    None,
    "--probe",
    help="Probe serial / mount point / device ID (a virtual device's probe is its device ID). "
    "Omit when exactly one probe is attached.",
)
SkuOption = typer.Option(
    None, "--sku", help="The hardware on the probe (picks the SWD target); a virtual device knows."
)
OptionOption = typer.Option(
    None,
    "--option",
    "-o",
    help="Backend option KEY=VALUE (e.g. -o interface=stlink); repeatable.",
)


def _choice(
    backend: str | None, probe: str | None, virtual: Path | None, options: list[str] | None
) -> BackendChoice:
    try:
        return BackendChoice.from_cli(backend, probe, virtual, options or [])
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def _platform(choice: BackendChoice, sku: str | None) -> int:
    try:
        return platform_for(choice, sku)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def _device_failure(exc: ProgrammerError) -> None:
    fail(str(exc), EXIT_DEVICE)


@app.command("list")
def list_command(
    virtual: Path | None = VirtualOption,
    backend: list[str] | None = typer.Option(
        None, "--backend", "-b", help="Only these backends (repeatable); default: every one."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    usb: bool = typer.Option(
        False, "--usb", help="List Particle devices on USB with platform and mode instead."
    ),
) -> None:
    """List the probes and Particle serial ports trayline can see.

    A backend whose tool is not installed is listed as such, not as an error.
    With --usb: the Particle devices on USB (ID, platform, normal or DFU mode).

    Example: trayline device list --virtual ./tray
    """
    if usb:
        list_usb_command(virtual, as_json)
        return
    from trayline.devices.discovery import discover

    found = discover(virtual=virtual, backends=backend)
    if as_json:
        out.print_json(json.dumps([f.to_dict() for f in found]))
        return
    table = Table("backend", "probe / port", "what", box=None, pad_edge=False)
    for f in found:
        table.add_row(f.backend, f.probe_id or "-", f.description)
    out.print(table)


@app.command("identify")
def identify_command(
    port: str | None = typer.Option(
        None, "--port", help="Serial port of the device (/dev/ttyACM0, a virtual /dev/pts/N)."
    ),
    probe: str | None = ProbeOption,
    backend: str | None = BackendOption,
    virtual: Path | None = VirtualOption,
    sku: str | None = SkuOption,
    option: list[str] | None = OptionOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    usb: str | None = UsbOption,
    sticker: str | None = StickerOption,
) -> None:
    """Who is this device: ID, serial, ICCID, IMEI, Device OS, modules.

    Over a serial port the device must be in listening mode (blinking dark blue);
    over a probe the ID is read from silicon and the modules from flash (serial,
    ICCID and IMEI are not reachable over SWD and print as null).

    Over USB (--usb ID) the device answers itself, in normal or listening mode;
    --sticker SERIAL checks the scanned label against its serial number (exit 6
    on a mismatch).

    Example: trayline device identify --port /dev/ttyACM0 --json
    """
    if usb is not None:
        identify_usb_command(usb, virtual, sticker, as_json)
        return
    if (port is None) == (probe is None and backend is None and virtual is None):
        fail("give --port, or --probe/--backend (or --virtual DIR)", EXIT_USAGE)
    try:
        if port is not None:
            result = identify_on_port(port)
        else:
            choice = _choice(backend, probe, virtual, option)
            platform_id = _platform(choice, sku)
            with reach(choice, slot=choice.probe_label(), platform_id=platform_id) as programmer:
                result = identify_with_programmer(programmer)
    except (ProgrammerError, ConsoleError) as exc:
        fail(str(exc), EXIT_DEVICE)
    except ValueError as exc:  # unknown backend, bad option, unsupported platform
        fail(str(exc), EXIT_USAGE)
    _print_identity(result, as_json)


def _print_identity(result: IdentifyResult, as_json: bool) -> None:
    data = result.to_dict()
    if as_json:
        out.print_json(json.dumps(data))
        return
    for key in ("device_id", "serial_number", "iccid", "imei", "device_os", "platform"):
        out.print(f"{key.replace('_', ' ')}: {data.get(key) or '-'}")
    for m in data.get("modules", []):
        out.print(f"  {m['function']} {m['index']} v{m['version']} at {m['address']}")


@app.command("flash")
def flash_command(
    bundle: str = typer.Argument(..., help="Bundle name (see `trayline firmware bundle list`)."),
    backend: str | None = BackendOption,
    probe: str | None = ProbeOption,
    virtual: Path | None = VirtualOption,
    option: list[str] | None = OptionOption,
    full: bool = typer.Option(False, "--full", help="Rewrite every module, even identical ones."),
    role: str | None = typer.Option(
        None, "--role", help="Record the flash as the unit's test or production firmware."
    ),
    slot: str | None = typer.Option(None, "--slot", help="Name the slot in messages and records."),
    db: str | None = DbOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    usb: str | None = UsbOption,
) -> None:
    """Put a bundle on one device: write what differs, verify, reset, check the read-back.

    The flash is recorded in the store (bundle, digest, each module written or
    skipped with its SHA-256, backend, probe, bytes, time) before the first byte
    and completed after the read-back. A flash that fails verification exits 6
    and leaves a record marked failed: the unit is not flashed.

    Example: trayline device flash prod-6.1.1 --virtual ./tray --probe e00fce68... --json
    """
    if role is not None and role not in ("test", "production"):
        fail(f"--role must be test or production, not {role!r}", EXIT_USAGE)
    if usb is not None:
        backend, probe = "usb", usb
    choice = _choice(backend, probe, virtual, option)
    with open_db(db) as store:
        try:
            try:
                info = get_bundle(store, bundle)
            except BundleError as exc:
                fail(str(exc), EXIT_USAGE)
            label = slot or choice.probe_label()
            with reach(choice, slot=label, platform_id=info.platform_id) as programmer:
                report = flash_bundle(store, programmer, bundle, role=role, slot=slot, full=full)
        except FlashFailed as exc:
            if as_json and exc.record is not None:
                out.print_json(json.dumps({"error": str(exc), "record": exc.record.to_dict()}))
            fail(str(exc), EXIT_DEVICE)
        except ProgrammerError as exc:
            _device_failure(exc)
        except BundleError as exc:
            fail(str(exc), 1)
        except ValueError as exc:  # unknown backend, bad option, unsupported platform
            fail(str(exc), EXIT_USAGE)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    for m in report.written:
        out.print(f"wrote   {m['function']} {m['index']} v{m['version']} at {m['address']}")
    for m in report.skipped:
        out.print(f"skipped {m['function']} {m['index']} v{m['version']} (already on the device)")
    for m in report.pending:
        err.print(f"pending {m['function']} {m['index']} v{m['version']}: {m['reason']}")
    out.print(
        f"{report.device_id}: {report.bundle} verified; {report.bytes_written} bytes written "
        f"in {report.seconds:.2f} s"
    )


@app.command("setup-done")
def setup_done_command(
    backend: str | None = BackendOption,
    probe: str | None = ProbeOption,
    virtual: Path | None = VirtualOption,
    sku: str | None = SkuOption,
    option: list[str] | None = OptionOption,
    undo: bool = typer.Option(False, "--undo", help="Clear the flag (back to listening mode)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    usb: str | None = UsbOption,
) -> None:
    """Set the Gen 3 setup-done flag, so the device stops booting into listening mode.

    Needed only on Gen 3 devices with Device OS below 4.0 (device-side.md §2.7);
    on 4.0+ and on the Electron it is reported as not needed. SWD cannot reach
    the flag (it lives in the DCT file on external flash): use the usb,
    particle-usb or virtual backend.

    Example: trayline device setup-done --usb e00fce68aabbccddeeff0011
    """
    if usb is not None:
        backend, probe = "usb", usb
    choice = _choice(backend, probe, virtual, option)
    if usb is not None and sku is None:
        platform_id = usb_platform(usb, virtual)
    else:
        platform_id = _platform(choice, sku)
    try:
        with reach(choice, slot=choice.probe_label(), platform_id=platform_id) as programmer:
            if not isinstance(programmer, SupportsSetupDone):
                fail(
                    f"backend {programmer.name!r} cannot reach the setup-done flag "
                    "(it lives in the DCT on external flash); use --backend usb or particle-usb",
                    EXIT_USAGE,
                )
            device_id = str(programmer.read_device_id())
            changed = programmer.set_setup_done(not undo)
            now = programmer.get_setup_done()
    except ProgrammerError as exc:
        _device_failure(exc)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    result = {"device_id": device_id, "needed": changed, "setup_done": now}
    if as_json:
        out.print_json(json.dumps(result))
    elif changed:
        out.print(f"{device_id}: setup-done flag {'cleared' if undo else 'set'}")
    else:
        out.print(f"{device_id}: not needed (Device OS 4.0+ or no such flag on this platform)")


@app.command("udev-rules")
def udev_rules() -> None:
    """Print the Linux udev rules that let a station open Particle devices without root.

    Particle devices (VID 2b04) and the Particle Debugger (0d28:0204), mode 0666
    and group plugdev, ModemManager kept off. See docs/usb.md.

    Example: trayline device udev-rules | sudo tee /etc/udev/rules.d/50-particle.rules
    """
    udev_rules_command()


def _written_label(module: dict[str, object]) -> str:
    """A record's module entry in a few words (a retired 128 KB user part has no version)."""
    if module.get("action") == "invalidate":
        return f"retired {module.get('what', 'old image')} at {module.get('address')}"
    return f"{module.get('function')} v{module.get('version')}"


@app.command("records")
def records_command(
    device_id: str = typer.Argument(..., help="The device ID (24 hex characters)."),
    db: str | None = DbOption,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, newest first."),
) -> None:
    """What was flashed to a device: every attempt, newest first, with each module.

    Example: trayline device records e00fce68aabbccddeeff0011 --json
    """
    with open_db(db) as store:
        records = flash_records_for_device(store, device_id.strip().lower())
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in records]))
        return
    if not records:
        out.print(f"{device_id}: no flash recorded")
        return
    table = Table("when", "bundle", "role", "status", "bytes", "modules written", box=None)
    for r in records:
        written = ", ".join(_written_label(m) for m in r.modules if m.get("done"))
        table.add_row(
            r.started_at.strftime("%Y-%m-%d %H:%M"),
            r.bundle_name,
            r.role or "-",
            r.status,
            str(r.bytes_written),
            written or "-",
        )
    out.print(table)

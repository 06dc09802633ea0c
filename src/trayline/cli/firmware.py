"""``trayline firmware``: inspect modules, build checked bundles, write the hex a CM flashes.

Exit codes (every command):

* 0 — done;
* 1 — the firmware is wrong: a file is not a readable module, a bundle was
  refused by its checks, or a stored bundle's files changed on disk;
* 2 — the command was wrong: unknown SKU or bundle, bad version text, an
  unreadable path or database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from trayline.cli.console import EXIT_USAGE, err, fail, out
from trayline.cli.firmware_tables import bundle_list_table, bundle_table, inspect_table
from trayline.cli.options import DbOption, WideOption, open_db
from trayline.cli.tables import print_table
from trayline.core.manifest import BundleInfo
from trayline.core.modules import ModuleError, parse_module
from trayline.core.skus import UnknownSku, get_sku
from trayline.core.versions import InvalidVersion, SemVer
from trayline.firmware.bundle import (
    ROLES,
    BundleError,
    BundleRefused,
    create_bundle,
    get_bundle,
    list_bundles,
    load_bundle,
    verify_bundle,
)
from trayline.firmware.diff import ReportedModule, modules_to_write
from trayline.firmware.hexfile import HexError, bin_plan, build_hex

EXIT_FIRMWARE = 1

app = typer.Typer(
    help=(
        "Inspect Particle module binaries, build checked firmware bundles for a SKU, and "
        "write the Intel HEX a contract manufacturer flashes.\n\n"
        "Example: trayline firmware inspect system-part1.bin user.bin"
    ),
    no_args_is_help=True,
)
bundle_app = typer.Typer(
    help="Checked, content-addressed sets of modules for one SKU (test or production).\n\n"
    "Example: trayline firmware bundle create --sku BRN404X --name prod-6.1.1 *.bin",
    no_args_is_help=True,
)
app.add_typer(bundle_app, name="bundle")


def _inspect_one(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {"file": str(path), "error": f"cannot read: {exc.strerror or exc}"}
    try:
        module = parse_module(data)
    except ModuleError as exc:
        return {"file": str(path), "error": str(exc)}
    return {"file": str(path), **module.to_dict()}


@app.command("inspect")
def inspect_command(
    files: list[Path] = typer.Argument(..., help="Module binaries (.bin)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per file."),
    wide: bool = WideOption,
) -> None:
    """Show what is inside Particle module binaries: platform, function, version, addresses,
    dependencies, Device OS, CRC and SHA-256 checks.

    The table fits 80 columns (file name, platform, module, version, Device OS, CRC);
    --wide adds the full path, start address and dependencies; --json holds everything.
    Exits 1 if any file is not a readable module (it is listed with an "error" field).

    Example: trayline firmware inspect --json boron-system-part1@6.1.1.bin tinker.bin
    """
    results = [_inspect_one(path) for path in files]
    failed = any("error" in r for r in results)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        raise typer.Exit(EXIT_FIRMWARE if failed else 0)
    print_table(inspect_table(results, wide=wide), wide=wide)
    for r in results:
        if "error" in r:
            err.print(f"[red]error:[/red] {r['file']}: {r['error']}")
    if failed:
        raise typer.Exit(EXIT_FIRMWARE)


def _stored_bundle(db: str | None, name: str) -> BundleInfo:
    """The bundle named ``name`` in the store, or its one-line error (exit 2)."""
    with open_db(db) as store:
        try:
            return get_bundle(store, name)
        except BundleError as exc:
            fail(str(exc))


def _print_bundle(info: BundleInfo, *, wide: bool = False) -> None:
    out.print(f"[bold]{info.name}[/bold]")
    out.print(
        f"{info.role} bundle for {info.sku} (line {info.line}), "
        f"Device OS {info.device_os or 'unknown'}"
        + (f", units arrive with {info.baseline_device_os}" if info.baseline_device_os else "")
    )
    out.print(f"digest {info.digest}")  # 71 characters: one line in 80 columns
    print_table(bundle_table(info, wide=wide), wide=wide)
    for warning in info.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}")


@bundle_app.command("create")
def bundle_create(
    files: list[Path] = typer.Argument(..., help="Module binaries to include, in any order."),
    sku: str = typer.Option(..., "--sku", help="The SKU the units are, e.g. BRN404X."),
    name: str = typer.Option(..., "--name", help="A unique name, e.g. brn404x-prod-6.1.1."),
    role: str = typer.Option("production", "--role", help="test or production."),
    line: str | None = typer.Option(
        None, "--line", help="Line name pairing test and production bundles (default: the SKU)."
    ),
    baseline: str | None = typer.Option(
        None,
        "--baseline-device-os",
        help="Device OS the units already run, e.g. 4.0.1: meets dependencies not in the bundle.",
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Refuse (not just warn) if test and production Device OS differ."
    ),
    db: str | None = DbOption,
) -> None:
    """Check modules for a SKU and store them as a bundle.

    Refuses (exit 1, one line per reason) a module for another platform, a dependency
    met neither in the bundle nor by --baseline-device-os, a Device OS below the SKU's
    minimum, a user part at the wrong address for its Device OS, a damaged file, and with
    --strict a test bundle whose Device OS differs from production's.

    Example: trayline firmware bundle create --sku BRN404X --name prod-6.1.1 \\
    boron-bootloader@6.1.1.bin boron-system-part1@6.1.1.bin app.bin
    """
    if role not in ROLES:
        fail(f"--role must be test or production, not {role!r}")
    try:
        found = get_sku(sku)
    except UnknownSku as exc:
        fail(str(exc))
    try:
        baseline_version = SemVer.parse(baseline) if baseline else None
    except InvalidVersion as exc:
        fail(f"--baseline-device-os: {exc}")
    with open_db(db) as store:
        try:
            info = create_bundle(
                store,
                name=name,
                sku=found,
                files=files,
                role=role,
                line=line,
                baseline_device_os=baseline_version,
                strict=strict,
            )
        except BundleRefused as exc:
            for problem in exc.problems:
                err.print(f"[red]refused:[/red] {problem}")
            for warning in exc.warnings:
                err.print(f"[yellow]warning:[/yellow] {warning}")
            fail(f"bundle {name!r} not created: {len(exc.problems)} problem(s)", EXIT_FIRMWARE)
        except BundleError as exc:
            fail(str(exc), EXIT_FIRMWARE if "already exists" not in str(exc) else EXIT_USAGE)
    _print_bundle(info)


@bundle_app.command("list")
def bundle_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    wide: bool = WideOption,
    db: str | None = DbOption,
) -> None:
    """List stored bundles (--wide adds the line and the full digest).

    Example: trayline firmware bundle list --json
    """
    with open_db(db) as store:
        bundles = list_bundles(store)
    if as_json:
        typer.echo(json.dumps([b.to_dict() for b in bundles], indent=2))
        return
    print_table(bundle_list_table(bundles, wide=wide), wide=wide)


@bundle_app.command("show")
def bundle_show(
    name: str = typer.Argument(..., help="Bundle name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    wide: bool = WideOption,
    db: str | None = DbOption,
) -> None:
    """Show one bundle's manifest in flashing order (--wide adds each file's SHA-256).

    Example: trayline firmware bundle show prod-6.1.1
    """
    info = _stored_bundle(db, name)
    if as_json:
        typer.echo(json.dumps(info.to_dict(), indent=2))
        return
    _print_bundle(info, wide=wide)


@bundle_app.command("verify")
def bundle_verify(
    name: str = typer.Argument(..., help="Bundle name."),
    db: str | None = DbOption,
) -> None:
    """Re-hash a bundle's stored files against its manifest (exit 1 if any changed).

    Example: trayline firmware bundle verify prod-6.1.1
    """
    with open_db(db) as store:
        try:
            problems = verify_bundle(store, name)
        except BundleError as exc:
            fail(str(exc))
    for problem in problems:
        err.print(f"[red]changed:[/red] {problem}")
    if problems:
        fail(f"bundle {name!r} does not match its manifest", EXIT_FIRMWARE)
    out.print(f"bundle {name!r}: every file matches its manifest")


@app.command("hex")
def hex_command(
    bundle: str = typer.Argument(..., help="Bundle name."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write."),
    fmt: str = typer.Option("hex", "--format", help="hex (Intel HEX) or bin-plan (JSON)."),
    uicr: bool = typer.Option(True, "--uicr/--no-uicr", help="Gen 3: include the UICR words."),
    db: str | None = DbOption,
) -> None:
    """Write one Intel HEX with every module at its address (for SWD programmers), or a
    bin-plan: JSON list of file, address, bytes to skip and erase range per module.

    Example: trayline firmware hex prod-6.1.1 -o boron-prod.hex
    """
    if fmt not in ("hex", "bin-plan"):
        fail(f"--format must be hex or bin-plan, not {fmt!r}")
    with open_db(db) as store:
        try:
            loaded = load_bundle(store, bundle)
        except BundleError as exc:
            code = EXIT_USAGE if str(exc).startswith("no bundle named") else EXIT_FIRMWARE
            fail(str(exc), code)
    platform = loaded.info.platform_id
    try:
        if fmt == "bin-plan":
            plan = bin_plan(loaded.placements, platform)
            for entry, path in zip(plan, loaded.paths, strict=True):
                entry["path"] = str(path)
            text = json.dumps(plan, indent=2) + "\n"
            skipped: tuple[str, ...] = ()
        else:
            image = build_hex(loaded.placements, platform, uicr=uicr)
            text = image.encode()
            skipped = image.skipped
    except HexError as exc:
        fail(f"{bundle}: {exc}", EXIT_FIRMWARE)
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror or exc}")
    for note in skipped:
        err.print(f"[yellow]not in hex:[/yellow] {note}")
    count = len(loaded.placements)
    out.print(f"wrote {output} ({fmt}, {count} modules, digest {loaded.info.digest[:12]})")


@app.command("diff")
def diff_command(
    bundle: str = typer.Argument(..., help="Bundle name."),
    device: Path = typer.Option(
        ...,
        "--device",
        help='JSON list of modules the device reports: [{"module_function": 4, '
        '"module_index": 1, "module_version": 6101, "sha256": "…"}, …]',
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str | None = DbOption,
) -> None:
    """List the bundle's modules a device still needs written (the rest are skipped).

    Example: trayline firmware diff prod-6.1.1 --device reported.json
    """
    try:
        raw = json.loads(device.read_text())
        reported = [
            ReportedModule(
                int(m["module_function"]),
                int(m["module_index"]),
                int(m["module_version"]),
                m.get("sha256"),
            )
            for m in raw
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"{device}: not a list of reported modules ({exc})")
    info = _stored_bundle(db, bundle)
    todo = modules_to_write(info.entries, reported)
    if as_json:
        rows = [{**t.entry.to_dict(), "reason": t.reason} for t in todo]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not todo:
        out.print(f"nothing to write: the device already runs bundle {bundle!r}")
    for t in todo:
        where = f"{t.entry.address:#010x}"
        out.print(f"write {t.entry.file_name} ({t.entry.label()}) at {where}: {t.reason}")

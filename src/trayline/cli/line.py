"""``trayline line``: write and check the line's ``trayline.toml``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import typer

from trayline import settings
from trayline.cli.console import fail, out
from trayline.cli.options import open_db
from trayline.core.ids import InvalidIdentifier, ProductRef
from trayline.core.skus import UnknownSku, get_sku
from trayline.settings.line import ConfigError, LineConfig
from trayline.station.handoff import line_job
from trayline.station.line import Line, load_line
from trayline.station.linefile import render_starter

app = typer.Typer(
    help=(
        "The line's configuration file, trayline.toml.\n\n"
        "Example: trayline line init --sku BRN404 --product 31337"
    ),
    no_args_is_help=True,
)


def _line_file(value: Path | None) -> Path:
    """``--config``, else ``TRAYLINE_LINE`` (through trayline.settings), else ./trayline.toml."""
    if value is not None:
        return value
    try:
        return settings.line_file() or Path("trayline.toml")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


LineOption = typer.Option(
    None,
    "--config",
    "-c",
    callback=_line_file,
    help="The line's configuration file [env var: TRAYLINE_LINE; default: ./trayline.toml].",
)


@app.command("init")
def init_command(
    sku: str = typer.Option(..., "--sku", help="The SKU built on this line, e.g. BRN404."),
    product: str = typer.Option(..., "--product", help="Particle product ID or slug."),
    config: Path = LineOption,
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter trayline.toml for SKU and PRODUCT.

    Example: trayline line init --sku BRN404 --product 31337 -c trayline.toml
    """
    try:
        found = get_sku(sku)
        ProductRef.parse(product)
    except (UnknownSku, InvalidIdentifier) as exc:
        fail(str(exc))
    if config.exists() and not force:
        fail(f"{config} exists; pass --force to overwrite it")
    config.write_text(render_starter(found, product), encoding="utf-8")
    out.print(f"wrote {config}: edit the parts, bundles and slots, then `trayline line check`")


def _load_or_fail(config: Path) -> Line:
    """The line file read and checked, or each problem in red and one line (exit 2)."""
    try:
        return load_line(config)
    except ConfigError as exc:
        for problem in exc.problems:
            out.print(f"[red]{problem}[/red]")
        fail(f"{config}: {len(exc.problems)} problem(s); nothing done")


@app.command("check")
def check_command(config: Path = LineOption) -> None:
    """Check trayline.toml and print what the line will do; every problem as FILE:LINE: key.

    Example: trayline line check -c trayline.toml
    """
    line = _load_or_fail(config)
    cfg = line.config
    for warning in cfg.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}")
    parts = ", ".join(p.name + ("" if p.required else " (optional)") for p in cfg.parts)
    out.print(
        f"{config}: {cfg.sku.name} for product {cfg.product} at station {cfg.station}; "
        f"bundles {cfg.bundles.test} / {cfg.bundles.production}; parts: {parts or 'none'}; "
        f"{len(line.plan.steps)} test steps; slots: {', '.join(s.name for s in cfg.slots)}"
    )


@dataclass(frozen=True, slots=True)
class LineHandoff:
    """What ``provision run --from-line`` provisions: the line's policy and its ready units."""

    config: LineConfig
    product: str
    input_file: Path
    group: str
    naming: bool
    claim: str
    claim_user: str | None


def line_handoff(config_path: Path, db: str | None) -> LineHandoff:
    """Read the line, list its ready units into ``handoff/GROUP.csv`` beside the config.

    The file is the job's input (kept: it is what was handed over); a line with
    no unit waiting is said and the command ends with nothing to do.
    """
    line = _load_or_fail(config_path)
    with open_db(db) as store:
        spec, inputs = line_job(store, line.config)
    if not inputs:
        out.print("no ready units are waiting to be provisioned; nothing to do")
        raise typer.Exit(0)
    folder = config_path.parent / "handoff"
    folder.mkdir(exist_ok=True)
    path = folder / f"{spec.group}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Device ID", "Serial Number", "ICCID"])
        for item in inputs:
            writer.writerow([item.device_id, item.serial or "", item.iccid or ""])
    policy = line.config.provisioning
    return LineHandoff(
        line.config,
        str(line.config.product),
        path,
        str(spec.group),
        policy.naming,
        policy.claim,
        policy.claim_user,
    )

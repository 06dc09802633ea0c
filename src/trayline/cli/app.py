"""The root ``trayline`` command: assembles the command groups and maps errors to exit codes.

Each command group lives in its own module (``cli/cloud.py``, ``cli/provision.py``,
``cli/firmware.py`` …) and exposes a Typer ``app``; this module only mounts them.
Errors a person can act on are reported with :func:`~trayline.cli.console.fail`:
one red line on stderr, no traceback, and the command's documented exit code.
"""

from __future__ import annotations

import typer

from trayline import __version__
from trayline.cli import (
    cloud,
    db,
    demo,
    device,
    export,
    firmware,
    import_cmd,
    keys,
    line,
    outbox,
    provision,
    serve,
    sims,
    skus,
    station,
    units,
    users,
    virtual,
)

app = typer.Typer(
    name="trayline",
    help=(
        "Run a Particle cellular manufacturing line: SIMs, parts, firmware, tests and "
        "cloud provisioning.\n\nExample: trayline skus BRN404"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.add_typer(db.app, name="db")
app.add_typer(cloud.app, name="cloud")
app.add_typer(provision.app, name="provision")
app.add_typer(sims.app, name="sims")
app.add_typer(firmware.app, name="firmware")
app.add_typer(device.app, name="device")
app.add_typer(virtual.app, name="virtual")
app.add_typer(line.app, name="line")
app.add_typer(station.app, name="station")
app.add_typer(units.app, name="units")
app.command("skus")(skus.skus_command)
app.command("demo")(demo.demo_command)
app.command("serve")(serve.serve_command)
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(export.app, name="export")
app.add_typer(import_cmd.app, name="import")
app.add_typer(outbox.app, name="outbox")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trayline {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """trayline: from a tray of Particle modules to a provisioned fleet."""


def main() -> None:
    app()

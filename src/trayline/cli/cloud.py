"""``trayline cloud``: run the local Particle Cloud for rehearsals and tests.

``trayline cloud serve`` starts the emulator of :mod:`trayline.particle.emulator`
on a real socket. A contract manufacturer with no internet can rehearse a whole
provisioning run against it, and trayline's own tests and benchmarks point the
client at it. docs/cloud.md describes every option and the admin endpoints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from trayline.cli.console import err, fail
from trayline.core.skus import UnknownSku, get_sku
from trayline.particle.emulator.app import create_app
from trayline.particle.emulator.config import EmulatorConfig, parse_rate_limit
from trayline.particle.emulator.server import bind, serve_forever

app = typer.Typer(
    help=(
        "A local Particle Cloud for rehearsals without internet and for tests.\n\n"
        "Example: trayline cloud serve --port 8080 --seed BRN404:50"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def cloud() -> None:
    """A local Particle Cloud for rehearsals without internet and for tests."""


def _parse_seed(text: str) -> tuple[str, int]:
    sku, sep, count = text.partition(":")
    if not sep or not count.strip().isdigit() or int(count) < 1:
        fail(f"--seed {text!r}: expected SKU:COUNT, e.g. --seed BRN404:50")
    try:
        return get_sku(sku).name, int(count)
    except UnknownSku as exc:
        fail(f"--seed {text!r}: {exc}")


def _rate(option: str, text: str | None) -> tuple[int, float] | None:
    if text is None or text.lower() == "off":
        return None
    try:
        return parse_rate_limit(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


def _fraction(option: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        fail(f"{option} {value}: expected a fraction between 0 and 1, e.g. 0.05")
    return value


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on; 0 picks a free port.")
    ] = 8080,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="JSON file to load on start and keep saved (atomic writes)."),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            "--rate-limit",
            help="REQUESTS/SECONDS per client address, e.g. 10000/300 (the real cloud's limit).",
        ),
    ] = None,
    serial_limit: Annotated[
        str,
        typer.Option(
            "--serial-lookup-limit",
            help="Serial-number lookups per user account, REQUESTS/SECONDS, or 'off'.",
        ),
    ] = "50/3600",
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Added to every answer.")
    ] = 0.0,
    jitter_ms: Annotated[
        float, typer.Option("--jitter-ms", min=0, help="Random extra delay, 0..N ms.")
    ] = 0.0,
    error_rate: Annotated[
        float, typer.Option("--error-rate", help="Fraction answered 500/502/503, e.g. 0.05.")
    ] = 0.0,
    drop_rate: Annotated[
        float, typer.Option("--drop-rate", help="Fraction of connections closed unanswered.")
    ] = 0.0,
    seed: Annotated[
        list[str] | None,
        typer.Option(
            "--seed", help="SKU:COUNT factory devices to create (repeatable), e.g. BRN404:50."
        ),
    ] = None,
    new_account: Annotated[
        bool,
        typer.Option("--new-account", help="Reject access_token in query and body (post-2024)."),
    ] = False,
    legacy_serial_field: Annotated[
        bool,
        typer.Option("--legacy-serial-field", help="Serial lookup sends deviceID, not device_id."),
    ] = False,
    random_seed: Annotated[
        int | None,
        typer.Option("--random-seed", help="Seed for device identities and fault dice."),
    ] = None,
) -> None:
    """Serve the local Particle Cloud until Ctrl-C.

    Example: trayline cloud serve --port 0 --state cloud.json --seed BRN404:50 --rate-limit 100/5
    """
    seeds = [_parse_seed(s) for s in seed or []]
    config = EmulatorConfig(
        rate_limit=_rate("--rate-limit", rate_limit),
        serial_lookup_limit=_rate("--serial-lookup-limit", serial_limit),
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        error_rate=_fraction("--error-rate", error_rate),
        drop_rate=_fraction("--drop-rate", drop_rate),
        new_account=new_account,
        legacy_serial_field=legacy_serial_field,
        seed=random_seed,
        state_file=state,
    )
    try:
        emulator = create_app(config)
    except (OSError, ValueError) as exc:
        fail(f"--state {state}: cannot load it: {exc}")
    resumed = state is not None and state.exists()
    if not resumed:  # a reloaded state already holds the devices seeded the first time
        for sku, count in seeds:
            emulator.cloud.make_devices(sku, count)
    try:
        sock = bind(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")

    def announce(url: str) -> None:
        # Plain print, not Rich: scripts read this exact first line.
        print(f"trayline cloud listening on {url}", flush=True)
        print(
            f"make a token: curl -s -X POST {url}/_emulator/tokens "
            '-H "Content-Type: application/json" -d \'{"username":"me@example.com"}\'',
            flush=True,
        )
        if resumed:
            err.print(f"resumed {state}: {len(emulator.cloud.devices)} devices (--seed skipped)")
        elif seeds:
            err.print(f"seeded {sum(c for _, c in seeds)} factory devices")

    try:
        serve_forever(emulator, sock, on_started=announce)
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    finally:
        sock.close()
    sys.stdout.flush()

"""``trayline cloud``: run the local Particle Cloud for rehearsals and tests.

``trayline cloud serve`` starts the emulator of :mod:`trayline.particle.emulator`
on a real socket. A contract manufacturer with no internet can rehearse a whole
provisioning run against it, and trayline's own tests and benchmarks point the
client at it. docs/cloud.md describes every option and the admin endpoints.

Its admin surface (``/_emulator``) can read every mobile secret, mint tokens and
reset the cloud, so the command refuses to listen beyond loopback unless an
admin token guards that surface. The token comes from the environment or a 0600
file, never from the command line, where ``ps`` and shell history would show it.
Every mistake is one ``error:`` line and exit status 2, before anything listens.
"""

from __future__ import annotations

import errno
import socket
import stat
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from trayline.cli.console import err, fail
from trayline.core.skus import UnknownSku, get_sku
from trayline.particle.emulator.app import EmulatorApp, create_app
from trayline.particle.emulator.config import EmulatorConfig, parse_rate_limit
from trayline.particle.emulator.faults import check_faults
from trayline.particle.emulator.server import bind, is_loopback_host, serve_forever
from trayline.particle.emulator.tray import TrayFileError, add_tray, read_tray
from trayline.settings import CLOUD_ADMIN_TOKEN, cloud_admin_token

ADMIN_TOKEN_ENV = CLOUD_ADMIN_TOKEN.name
MIN_ADMIN_TOKEN = 16
MAX_BODY_RANGE = (1024, 1024**3)

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


def _whole(option: str, text: str, low: int, high: int, hint: str = "") -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        fail(f"{option} {text}: expected a whole number from {low} to {high}{hint}")
    return value


def _faults(rate_limit: str | None, **texts: str) -> dict[str, Any]:
    """The fault options, checked against the same maxima as ``POST /_emulator/faults``."""
    raw: dict[str, str] = dict(texts)
    if rate_limit is not None:
        raw["rate_limit"] = rate_limit
    changes: dict[str, Any] = {}
    for name, text in raw.items():
        try:
            changes.update(check_faults({name: text}, parse_rate_limit))
        except ValueError as exc:
            fail(f"--{name.replace('_', '-')} {text}: {exc}")
    return changes


def _admin_token(token_file: Path | None) -> str | None:
    """The admin token from ``$TRAYLINE_CLOUD_ADMIN_TOKEN`` or a 0600 file, checked."""
    from_env = cloud_admin_token()  # empty or blank = unset
    if token_file is not None and from_env:
        fail(f"give the admin token one way: {ADMIN_TOKEN_ENV} or --admin-token-file, not both")
    if token_file is None:
        token = from_env
        source = ADMIN_TOKEN_ENV
    else:
        source = f"--admin-token-file {token_file}"
        try:
            mode = token_file.stat().st_mode
            if stat.S_IMODE(mode) & 0o077:
                fail(
                    f"{source}: readable by others (mode {stat.S_IMODE(mode):o}); "
                    f"run: chmod 600 {token_file}"
                )
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{source}: cannot read it: {getattr(exc, 'strerror', None) or exc}")
    if token is None:
        return None
    if (
        len(token) < MIN_ADMIN_TOKEN
        or not token.isascii()
        or not token.isprintable()
        or " " in token
    ):
        fail(
            f"{source}: the admin token must be at least {MIN_ADMIN_TOKEN} printable ASCII "
            f"characters without spaces, e.g. the output of: openssl rand -hex 24"
        )
    return token


def _check_exposure(host: str, admin_token: str | None) -> None:
    """Refuse a non-loopback address unless an admin token guards ``/_emulator``."""
    try:
        loopback = is_loopback_host(host)
    except OSError as exc:
        fail(f"--host {host}: cannot resolve it: {exc.strerror or exc}")
    if not loopback and admin_token is None:
        fail(
            f"--host {host} is reachable from the network and /_emulator would let anyone there "
            f"read every mobile secret, mint tokens or reset the cloud: set {ADMIN_TOKEN_ENV} "
            f"or --admin-token-file FILE (0600), or listen on 127.0.0.1"
        )


def _populate(
    emulator: EmulatorApp,
    seeds: list[tuple[str, int]],
    tray: Path | None,
    online: bool,
    resumed: Path | None,
) -> str:
    """Seed factory devices and load the tray; returns what to say about it."""
    said = []
    if tray is not None:
        try:
            units = read_tray(tray, emulator.cloud.rng)
            added = add_tray(emulator.cloud, units, tray / "devices.json", online=online)
        except TrayFileError as exc:
            fail(str(exc))
        said.append(f"tray {tray}: {len(units)} devices ({len(units) - len(added)} already known)")
    if resumed:  # a reloaded state already holds the devices seeded the first time
        said.append(f"resumed {resumed}: {len(emulator.cloud.devices)} devices (--seed skipped)")
    elif seeds:
        for sku, count in seeds:
            emulator.cloud.make_devices(sku, count, online=online)
        said.append(f"seeded {sum(c for _, c in seeds)} factory devices")
    return "; ".join(said)


def _bind(host: str, port: int) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why += " (another server is on that port: pick another --port, or --port 0)"
        fail(f"cannot listen on {host}:{port}: {why}")


# The options of ``cloud serve``, one per line (a table, so the command stays short).
_Host = Annotated[
    str, typer.Option("--host", help="Address to listen on; beyond loopback needs an admin token.")
]
_Port = Annotated[str, typer.Option("--port", help="Port, 0..65535; 0 picks a free one.")]
_State = Annotated[
    Path | None, typer.Option("--state", help="JSON file to load on start and keep saved.")
]
_Tray = Annotated[
    Path | None,
    typer.Option("--tray", help="Virtual tray folder: load the devices of DIR/devices.json."),
]
_Online = Annotated[bool, typer.Option("--online", help="--seed and --tray devices start online.")]
_RateLimit = Annotated[
    str | None,
    typer.Option("--rate-limit", help="REQUESTS/SECONDS per client address, e.g. 10000/300."),
]
_SerialLimit = Annotated[
    str,
    typer.Option("--serial-lookup-limit", help="Serial lookups per user, REQUESTS/SECONDS or off."),
]
_Latency = Annotated[str, typer.Option("--latency-ms", help="Added to every answer, 0..60000.")]
_Jitter = Annotated[str, typer.Option("--jitter-ms", help="Random extra delay, 0..N ms.")]
_Errors = Annotated[str, typer.Option("--error-rate", help="Fraction answered 500/502/503.")]
_Drops = Annotated[str, typer.Option("--drop-rate", help="Fraction of connections dropped.")]
_Seed = Annotated[
    list[str] | None,
    typer.Option("--seed", help="SKU:COUNT factory devices (repeatable), e.g. BRN404:50."),
]
_AdminTokenFile = Annotated[
    Path | None,
    typer.Option(
        "--admin-token-file",
        help=(
            f"File (mode 0600) with the token /_emulator requires; or set {ADMIN_TOKEN_ENV}. "
            "Required unless --host is loopback. There is no option that takes the token "
            "itself: ps and shell history would show it."
        ),
    ),
]
_MaxBody = Annotated[str, typer.Option("--max-body-bytes", help="Largest body; more is a 413.")]
_NewAccount = Annotated[
    bool, typer.Option("--new-account", help="Reject access_token in query and body.")
]
_LegacySerial = Annotated[
    bool, typer.Option("--legacy-serial-field", help="Serial lookup sends deviceID.")
]
_RandomSeed = Annotated[
    int | None, typer.Option("--random-seed", help="Seed for identities and fault dice.")
]


@app.command("serve")
def serve(
    host: _Host = "127.0.0.1",
    port: _Port = "8080",
    state: _State = None,
    tray: _Tray = None,
    online: _Online = False,
    rate_limit: _RateLimit = None,
    serial_limit: _SerialLimit = "50/3600",
    latency_ms: _Latency = "0",
    jitter_ms: _Jitter = "0",
    error_rate: _Errors = "0",
    drop_rate: _Drops = "0",
    seed: _Seed = None,
    admin_token_file: _AdminTokenFile = None,
    max_body_bytes: _MaxBody = str(EmulatorConfig.max_body_bytes),
    new_account: _NewAccount = False,
    legacy_serial_field: _LegacySerial = False,
    random_seed: _RandomSeed = None,
) -> None:
    """Serve the local Particle Cloud until Ctrl-C.

    Example: trayline cloud serve --port 0 --state cloud.json --seed BRN404:50 --rate-limit 100/5

    Example: trayline cloud serve --tray trays/t1 --online

    Example: TRAYLINE_CLOUD_ADMIN_TOKEN=$(openssl rand -hex 24) trayline cloud serve --host 0.0.0.0
    """
    port_number = _whole("--port", port, 0, 65535, " (0 picks a free port)")
    admin_token = _admin_token(admin_token_file)
    _check_exposure(host, admin_token)
    faults = _faults(
        rate_limit,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        error_rate=error_rate,
        drop_rate=drop_rate,
    )
    config = EmulatorConfig(
        serial_lookup_limit=_rate("--serial-lookup-limit", serial_limit),
        new_account=new_account,
        legacy_serial_field=legacy_serial_field,
        seed=random_seed,
        state_file=state,
        admin_token=admin_token,
        max_body_bytes=_whole("--max-body-bytes", max_body_bytes, *MAX_BODY_RANGE),
        **faults,
    )
    seeds = [_parse_seed(s) for s in seed or []]
    try:
        emulator = create_app(config)
    except (OSError, ValueError) as exc:
        fail(f"--state {state}: cannot load it: {exc}")
    for problem in emulator.cloud.load_problems[:10]:
        err.print(f"warning: {state}: {problem}")
    resumed = state if state is not None and state.exists() else None
    said = _populate(emulator, seeds, tray, online, resumed)
    _run(emulator, host, port_number, said, admin_token_file)


def _run(emulator: EmulatorApp, host: str, port: int, said: str, token_file: Path | None) -> None:
    sock = _bind(host, port)
    auth = ""
    if emulator.config.admin_token is not None:
        shown = f"$(cat {token_file})" if token_file is not None else f"${ADMIN_TOKEN_ENV}"
        auth = f'-H "Authorization: Bearer {shown}" '

    def announce(url: str) -> None:
        # Plain print, not Rich: scripts read this exact first line.
        print(f"trayline cloud listening on {url}", flush=True)
        print(
            f"make a token: curl -s -X POST {url}/_emulator/tokens {auth}"
            '-H "Content-Type: application/json" -d \'{"username":"me@example.com"}\'',
            flush=True,
        )
        if said:
            err.print(said)

    try:
        serve_forever(emulator, sock, on_started=announce)
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    finally:
        sock.close()
    sys.stdout.flush()

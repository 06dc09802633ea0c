"""``trayline serve``: the web UI — station pages, dashboard, unit pages, search, API.

The server owns one station runner per ``--config`` line (the same runner as
``trayline station run``), started with the server and stopped with it; scans
on the station page go to it. It binds 127.0.0.1 unless told otherwise, and
listens on another address only when users exist (otherwise the local mode —
anyone at this machine is admin until the first user is added — would be open
to the network). Session cookies are signed with ``TRAYLINE_WEB_SECRET`` or the
0600 file ``.trayline-web-secret`` in the workspace (made on first start).

Exit codes: 0 stopped cleanly; 2 bad usage or configuration (nothing
started); 4 store problem; 130 Ctrl-C.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import typer

from trayline.cli.console import err, fail, out
from trayline.cli.options import DbOption, open_db
from trayline.firmware.bundle import BundleError, get_bundle
from trayline.inputs import InputError
from trayline.settings.line import ConfigError
from trayline.station.assembly import StationOptions, build_runner
from trayline.station.line import load_line
from trayline.station.prompts import QueuedPrompts
from trayline.store.db import Store
from trayline.store.users import count_users
from trayline.web.secret import SecretError, load_secret, workspace_of
from trayline.web.stations import StationHandle, StationHub

__all__ = ["is_loopback", "serve_command"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _station(store: Store, config: Path, options: StationOptions) -> StationHandle:
    try:
        line = load_line(config)
    except (ConfigError, OSError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for problem in problems:
            err.print(problem, markup=False)
        fail(f"{config}: cannot use this line; nothing started")
    try:
        for name in (line.config.bundles.test, line.config.bundles.production):
            get_bundle(store, name)
    except BundleError as exc:
        fail(f"{config}: [bundles]: {exc}")
    queued = QueuedPrompts()
    try:
        runner = build_runner(store, line, options, prompts=queued, answer=queued.answer)
    except InputError as exc:
        fail(str(exc))
    return StationHandle(line.config.station, runner, queued)


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port or --host")


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    config: list[Path] = typer.Option(
        [], "--config", "-c", help="A line whose station this server drives (repeatable)."
    ),
    virtual: Path | None = typer.Option(
        None, "--virtual", help="Drive the virtual tray in DIR (trayline virtual tray/serve)."
    ),
    tray: Path | None = typer.Option(None, "--tray", help="Tray list (serial → device ID)."),
    time_scale: float | None = typer.Option(
        None, "--time-scale", min=0, help="Virtual devices: real seconds per simulated second."
    ),
    db: str | None = DbOption,
) -> None:
    """Serve the web UI: station pages, dashboard, unit pages, search and /api/.

    Example: trayline serve -c trayline.toml --virtual tray/
    Example: TRAYLINE_DATABASE_URL=postgresql+psycopg://db/line trayline serve --host 0.0.0.0
    """
    import uvicorn

    from trayline.web.app import create_app

    if virtual is not None and not (virtual / "tray.csv").is_file():
        fail(f"{virtual}: not a virtual tray (no tray.csv); create one with trayline virtual tray")
    store = open_db(db)
    users = count_users(store)
    if not is_loopback(host) and users == 0:
        fail(
            f"--host {host} would open the line to the network with no users (local mode lets "
            "anyone in as admin): add one first with trayline users add NAME --role admin"
        )
    try:
        secret = load_secret(workspace_of(store.url))
    except SecretError as exc:
        fail(str(exc))
    _check_port(host, port)
    options = StationOptions(virtual_dir=virtual, tray_file=tray, time_scale=time_scale)
    hub = StationHub()
    for path in config:
        handle = _station(store, path, options)
        if hub.get(handle.name) is not None:
            fail(f"{path}: station {handle.name!r} is already served by another --config")
        hub.add(handle)
    app = create_app(store, secret=secret, hub=hub, open_local=users == 0)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"trayline serves http://{shown}:{port}/ (Ctrl-C stops)")
    if users == 0:
        out.print("[yellow]local mode: no users yet, anyone on this machine is admin[/yellow]")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
    finally:
        store.dispose()

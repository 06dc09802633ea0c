"""``trayline serve``: the web UI — station pages, dashboard, unit pages, search, API.

The server owns one station runner per ``--config`` line (the same runner as
``trayline station run``), started with the server and stopped with it; scans
on the station page go to it. It binds 127.0.0.1 unless told otherwise, and
listens on another address only when users exist (otherwise the local mode —
anyone at this machine is admin until the first user is added — would be open
to the network). Session cookies are signed with ``TRAYLINE_WEB_SECRET`` or the
0600 file ``.trayline-web-secret`` in the workspace (made on first start).

Ctrl-C or SIGTERM stops it cleanly: no new requests, the open ones get 3 s,
each station's slots up to 5 s to finish their unit (one still busy is resumed
from its last recorded step at the next start), the store is closed, and one
line on stderr says so.

Exit codes: 2 bad usage or configuration (nothing started); 4 store problem or
the server did not start; 130 stopped by Ctrl-C (SIGINT); 143 stopped by SIGTERM.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import typer

from trayline.cli.console import err, fail, out
from trayline.cli.options import EXIT_STORE, DbOption, open_db
from trayline.firmware.bundle import BundleError, get_bundle
from trayline.inputs import InputError
from trayline.settings.line import ConfigError
from trayline.station.assembly import StationOptions, build_runner
from trayline.station.line import load_line
from trayline.station.prompts import QueuedPrompts
from trayline.store.db import Store
from trayline.store.users import count_users
from trayline.web.access import is_loopback
from trayline.web.secret import SecretError, load_secret, workspace_of
from trayline.web.stations import StationHandle, StationHub

if TYPE_CHECKING:
    from trayline.web.serving import SignalServer

__all__ = ["is_loopback", "serve_command"]


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


def _listen(host: str, port: int) -> socket.socket:
    """The bound socket the server will accept on (port 0: any free port), or a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port or --host")
    return sock


def _run(server: SignalServer, sock: socket.socket, hub: StationHub) -> None:
    """Serve until a signal; exit 130 (SIGINT) or 143 (SIGTERM) with one line on stderr."""
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn's "startup failed" (it logged why)
        fail("the web server did not start (see the message above)", EXIT_STORE)
    finally:
        sock.close()
    if server.stopped_by is None:
        return
    busy = hub.left_busy
    _stopped(
        server.stopped_by,
        f"; units in slots {', '.join(busy)} resume at the next start" if busy else "",
    )


def serve_command(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on; any but loopback needs a user (trayline users add).",
    ),
    port: int = typer.Option(
        8080, "--port", min=0, max=65535, help="Port to listen on (0: any free port, printed)."
    ),
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
    trusted_proxy: list[str] = typer.Option(
        [],
        "--trusted-proxy",
        help="A reverse proxy's address or network (10.0.0.0/8) whose X-Forwarded-For names "
        "the client (repeatable); one on this machine is always trusted.",
    ),
    db: str | None = DbOption,
) -> None:
    """Serve the web UI: station pages, dashboard, unit pages, search and /api/.

    Ctrl-C (exit 130) or SIGTERM (exit 143) stops it cleanly: slots finish their unit, store closed.

    Example: trayline serve -c trayline.toml --virtual tray/
    Example: trayline serve --port 0
    Example: TRAYLINE_DATABASE_URL=postgresql+psycopg://db/line trayline serve --host 0.0.0.0
    Example: trayline serve --host 10.1.2.3 --trusted-proxy 10.1.2.1
    """
    proxies = [_proxy(value) for value in trusted_proxy]
    if virtual is not None and not (virtual / "tray.csv").is_file():
        fail(f"{virtual}: not a virtual tray (no tray.csv); create one with trayline virtual tray")
    options = StationOptions(virtual, tray, time_scale=time_scale)
    previous = signal.signal(signal.SIGTERM, _terminate)  # until the server takes the signals
    try:
        with open_db(db) as store:
            _serve(store, host, port, config, options, proxies)
    except (KeyboardInterrupt, _Terminated) as exc:
        signum = signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT
        _stopped(signum, " before it was serving")
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    """SIGTERM while the server was still starting (opening the store, building stations)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


def _stopped(signum: int, how: str) -> NoReturn:
    name = signal.Signals(signum).name
    err.print(f"trayline serve stopped ({name}){how}", markup=False, highlight=False)
    raise typer.Exit(128 + signum)


def _proxy(value: str) -> str:
    """A ``--trusted-proxy`` value as an address or network, or exit 2 saying why."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        fail(
            f"--trusted-proxy {value!r}: not an IP address or network (such as 10.1.2.1 or "
            "10.0.0.0/8); '*' is not taken, it would let any client name its own address"
        )


def _serve(
    store: Store,
    host: str,
    port: int,
    config: list[Path],
    options: StationOptions,
    proxies: list[str],
) -> None:
    from trayline.web.app import create_app
    from trayline.web.serving import SignalServer, server_config

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
    sock = _listen(host, port)
    hub = StationHub()
    for path in config:
        handle = _station(store, path, options)
        if hub.get(handle.name) is not None:
            fail(f"{path}: station {handle.name!r} is already served by another --config")
        hub.add(handle)
    app = create_app(store, secret=secret, hub=hub, open_local=users == 0)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"trayline serves http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C stops)")
    if users == 0:
        out.print("[yellow]local mode: no users yet, anyone on this machine is admin[/yellow]")
    _run(SignalServer(server_config(app, proxies)), sock, hub)

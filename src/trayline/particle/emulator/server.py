"""Running the local cloud on a real socket: in a background thread, or in the foreground.

Socket tests, the demo and the benchmarks need a URL, not an ASGI object.
:func:`serve_in_background` binds the socket itself (so ``port=0`` gives a free
port known before the server runs), starts uvicorn in a daemon thread, waits
until it accepts connections, yields the base URL, and on exit asks uvicorn to
stop and joins the thread. ``trayline cloud serve`` uses :func:`bind` and
:func:`serve_forever` the same way in the foreground.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

from trayline.particle.emulator.app import EmulatorApp, create_app
from trayline.particle.emulator.config import EmulatorConfig

__all__ = ["bind", "is_loopback_host", "serve_forever", "serve_in_background"]


def is_loopback_host(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (``OSError`` if unknown).

    ``127.0.0.1``, ``::1`` and ``localhost`` are; ``0.0.0.0``, ``::`` and a LAN
    address are not: anyone on the network could reach the admin surface there.
    """
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback for info in infos
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _server(app: EmulatorApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        proxy_headers=False,
    )
    return uvicorn.Server(config)


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@contextmanager
def serve_in_background(
    app_or_config: EmulatorApp | EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[str]:
    """Run the emulator on ``host:port`` in a thread; yield its base URL (``http://127.0.0.1:N``)."""
    app = app_or_config if isinstance(app_or_config, EmulatorApp) else create_app(app_or_config)
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="trayline-cloud", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the local cloud did not start")
        time.sleep(0.002)
    try:
        yield base_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=5.0)
        sock.close()


def serve_forever(
    app: EmulatorApp, sock: socket.socket, on_started: Callable[[str], None] | None = None
) -> None:
    """Serve in this thread until SIGINT/SIGTERM; call ``on_started(url)`` once listening."""
    server = _server(app)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.005)
        if server.started and on_started is not None:
            on_started(base_url(sock))
        await task

    asyncio.run(main())

"""Running the app under uvicorn for ``trayline serve``: Ctrl-C and SIGTERM become exit codes.

uvicorn shuts down gracefully on SIGINT or SIGTERM (the app's lifespan stops the
stations) and then raises the same signal again, so the process dies of it:
SIGTERM kills it before the command can close the store or say anything, and
Ctrl-C ends as a ``KeyboardInterrupt`` deep in the CLI. :class:`SignalServer`
keeps the signal instead (:attr:`~SignalServer.stopped_by`) and lets
``trayline serve`` close the store and exit 130 or 143 with one line.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI

__all__ = ["GRACE_S", "SignalServer", "server_config"]

GRACE_S = 3
"""Seconds open requests (a station page's live stream) get once the server is asked to stop."""


LOOPBACK_PROXIES = ("127.0.0.1", "::1")
"""Always trusted to say whom they relay for: a reverse proxy on this machine."""


def server_config(app: FastAPI, trusted_proxies: Sequence[str] = ()) -> uvicorn.Config:
    """uvicorn's settings. The client address (the sign-in limit counts per address) is taken
    from ``X-Forwarded-For`` only when the peer is loopback or one of ``trusted_proxies``;
    set here, so uvicorn's own ``FORWARDED_ALLOW_IPS`` variable (``*`` would let any client
    name its own address) has no say."""
    return uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=GRACE_S,
        proxy_headers=True,
        forwarded_allow_ips=[*LOOPBACK_PROXIES, *trusted_proxies],
    )


class SignalServer(uvicorn.Server):
    """uvicorn's server; the signal that stopped it is kept, not raised again."""

    stopped_by: int | None = None

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._stop) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = signum
        self.handle_exit(signum, frame)  # a second Ctrl-C stops waiting for open requests

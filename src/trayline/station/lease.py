"""Who works a unit: the lease owner name and how a dead owner is recognised.

A lease owner is ``station/host/pid/nonce``. Leases expire (``LEASE_TTL``) so a
station that died on another machine frees its units eventually; on the same
host a station restarted after a SIGKILL or a power cut need not wait: an
owner whose process no longer exists is *abandoned* and its units are taken
over at once. A live process's lease is never taken: that is the "one process
works a unit at a time" guarantee, and the database's compare-and-swap
(:func:`trayline.store.units.take_lease`) makes it hold between processes.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from trayline.core.processes import process_alive

__all__ = ["LEASE_TTL", "abandoned", "owner_name"]

LEASE_TTL = timedelta(minutes=10)
"""Longer than any one step; a cellular test may take 20 minutes, so it is renewed per step."""


def owner_name(station: str) -> str:
    return f"{station}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def abandoned(owner: str) -> bool:
    """True when ``owner`` is a process on this host that no longer exists."""
    parts = owner.split("/")
    if len(parts) != 4 or parts[1] != socket.gethostname() or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    return pid != os.getpid() and not process_alive(pid)

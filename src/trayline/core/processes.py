"""Whether a process on this host still runs: how a lease tells a dead holder from a live one.

``kill(pid, 0)`` alone is not enough. A process killed with SIGKILL stays in the
process table as a zombie until its parent reaps it, and ``kill`` still finds it;
in a container whose PID 1 does not reap orphans that can last for minutes. A
zombie runs no code and holds no lock, so it counts as gone: a station or job
restarted after a kill takes its leases over at once instead of waiting for
them to expire.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    return _state(pid) not in ("Z", "X", "gone")


def _state(pid: int) -> str | None:
    """The one-letter state from ``/proc/PID/stat``; "gone" if it vanished; None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return "gone" if Path("/proc/self").is_dir() else None
    except OSError:
        return None
    # "pid (comm) S ...": the command name may hold any byte, ")" included; the last ")" ends it.
    end = stat.rfind(b")")
    return stat[end + 2 : end + 3].decode("ascii", "replace") or None

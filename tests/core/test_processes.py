"""Process liveness for leases: a zombie (killed, not yet reaped) is not alive."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from trayline.core.processes import process_alive

pytestmark = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")


def _wait_for_state(pid: int, letter: str) -> None:
    for _ in range(3000):  # a hang guard (30 s), not a timing check
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        if stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == letter.encode():
            return
        time.sleep(0.01)
    pytest.fail(f"process {pid} never reached state {letter}")


def test_this_process_is_alive() -> None:
    assert process_alive(os.getpid())


def test_a_running_child_is_alive_and_a_killed_unreaped_one_is_not() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert process_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        _wait_for_state(child.pid, "Z")  # killed, not reaped: kill(pid, 0) still finds it
        os.kill(child.pid, 0)
        assert not process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_a_stopped_process_is_alive() -> None:
    """SIGSTOP (a debugger, Ctrl-Z) pauses a holder; it may go on, so its lease stands."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(child.pid, signal.SIGSTOP)
        _wait_for_state(child.pid, "T")
        assert process_alive(child.pid)
    finally:
        child.kill()
        child.wait()

"""One long-running OpenOCD per probe, driven over its Tcl RPC port (spec §7, §10.2).

device-os-flash-util starts OpenOCD once per adapter and sends it commands,
instead of paying OpenOCD's start-up, USB enumeration and target examination
for every operation. This module does the same: :class:`OpenOcdServer`
starts ``openocd … -c "tcl_port N; telnet_port disabled; gdb_port disabled"
-c init`` (same interface, serial, transport, target and speed as the one-shot
backend) with its output going to a log file, and
:class:`OpenOcdSessionProgrammer` sends each operation's commands.

Framing: the Tcl RPC port (not telnet) is used because each request and reply
ends with a 0x1A byte, so a reply is never confused with a prompt or echo.
Each command runs inside ``capture`` (so the log lines it prints — ``**
Programming Finished **``, ``Error: …`` — come back as its output) and
``catch`` (so a failing command is reported, not lost); the reply is ``OK`` or
``ERR`` on the first line, then the captured text, which the one-shot backend's
parsers read unchanged.

Failure handling: if OpenOCD exits before its port answers, its log is parsed
like a one-shot run (probe not found, target not halted, …). A command that
exceeds its timeout kills the server's process group (:class:`ToolTimeout`);
the next operation starts a fresh server. ``close`` sends ``shutdown`` and
kills the group if it lingers.

Option: ``session=tcl`` on the ``openocd`` backend selects this mode.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, Unpack

from trayline.programmers.base import ProbeInfo, ToolFailed, ToolTimeout
from trayline.programmers.openocd import ERRORS, OpenOcdArgs, OpenOcdProgrammer
from trayline.programmers.tool import ToolRun, check_run, classify

__all__ = ["OpenOcdServer", "OpenOcdSessionProgrammer", "TclRpc", "free_port", "tcl_script"]

_EOM = b"\x1a"


class ServerProcess(Protocol):
    """What the session needs of the OpenOCD process (a ``subprocess.Popen``, or a test fake)."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


Spawn = Callable[[Sequence[str], Path], ServerProcess]


def _spawn(argv: Sequence[str], log: Path) -> ServerProcess:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def free_port() -> int:
    """A loopback TCP port nobody listens on now (OpenOCD binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tcl_script(command: str) -> str:
    """``command`` wrapped so the reply says OK/ERR and carries what it logged."""
    return (
        f"if {{[catch {{capture {{{command}}}}} trayline_out]}} "
        '{set trayline_r "ERR\\n$trayline_out"} '
        '{set trayline_r "OK\\n$trayline_out"}'
    )


class TclRpc:
    """One connection to OpenOCD's Tcl RPC port: send a script, read until 0x1A."""

    def __init__(self, port: int, *, connect_timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=connect_timeout)

    def call(self, script: str, *, timeout: float) -> str:
        self.sock.settimeout(timeout)
        self.sock.sendall(script.encode("utf-8") + _EOM)
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("OpenOCD closed the Tcl connection")
            chunks.append(chunk)
            if chunk.endswith(_EOM):
                return b"".join(chunks)[:-1].decode("utf-8", "replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class OpenOcdServer:
    """The OpenOCD process for one probe: started on demand, stopped on close."""

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        log: Path,
        *,
        slot: str,
        spawn: Spawn = _spawn,
        startup_timeout: float = 20.0,
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self.log = log
        self.slot = slot
        self._spawn = spawn
        self.startup_timeout = startup_timeout
        self.process: ServerProcess | None = None
        self.rpc: TclRpc | None = None

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def start(self) -> TclRpc:
        """Start OpenOCD and connect; its own errors (no probe, no target) are raised typed."""
        if self.rpc is not None:
            return self.rpc
        self.process = self._spawn(self.argv, self.log)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self._died(code)
            try:
                self.rpc = TclRpc(self.port, connect_timeout=0.5)
                return self.rpc
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise ToolTimeout(
            f"OpenOCD did not open its Tcl port {self.port} within {self.startup_timeout:g} s",
            slot=self.slot,
            transcript=self.log_text(),
        )

    def _died(self, code: int) -> None:
        output = self.log_text()
        run = ToolRun(tuple(self.argv), code if code else 1, output, 0.0)
        self.process = None
        error = classify(run, ERRORS, slot=self.slot, tool="openocd")
        raise error or ToolFailed("OpenOCD exited at start-up", slot=self.slot, transcript=output)

    def kill(self) -> None:
        if self.rpc is not None:
            self.rpc.close()
            self.rpc = None
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

    def stop(self) -> None:
        """``shutdown`` politely, then make sure the process group is gone."""
        if self.rpc is not None:
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                self.rpc.call("shutdown", timeout=2.0)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2.0)
        self.kill()


class OpenOcdSessionProgrammer(OpenOcdProgrammer):
    """The OpenOCD backend with one server per probe instead of one process per operation."""

    name = "openocd"

    def __init__(
        self, probe: ProbeInfo, *, spawn: Spawn = _spawn, **settings: Unpack[OpenOcdArgs]
    ) -> None:
        super().__init__(probe, **settings)
        self._spawn = spawn
        self._server: OpenOcdServer | None = None

    def server_args(self, port: int) -> list[str]:
        """The argv that starts the server (executable included)."""
        args = self.base_args()
        cut = args.index("init") - 1  # "-c", "init": the ports go before init
        ports = f"tcl_port {port}; telnet_port disabled; gdb_port disabled"
        return [self.tool.resolve(), *args[:cut], "-c", ports, "-c", "init"]

    def server(self) -> OpenOcdServer:
        if self._server is None:
            port = free_port()
            log = self.workdir() / f"openocd-{port}.log"
            self._server = OpenOcdServer(
                self.server_args(port), port, log, slot=self.slot, spawn=self._spawn
            )
        return self._server

    def _run(self, *commands: str, timeout: float, success: str | None = None) -> ToolRun:
        server = self.server()
        rpc = server.start()
        if self.mcu.connect_under_reset:
            commands = ("reset halt", *commands)
        started = time.monotonic()
        outputs: list[str] = []
        failed = False
        for command in commands:
            try:
                reply = rpc.call(tcl_script(command), timeout=timeout)
            except (TimeoutError, OSError) as exc:
                server.kill()
                self._server = None
                raise ToolTimeout(
                    f"OpenOCD did not answer {command!r} within {timeout:g} s ({exc}); "
                    "the server was stopped",
                    slot=self.slot,
                    transcript="\n".join(outputs),
                ) from exc
            status, _, text = reply.partition("\n")
            outputs.append(text)
            if status != "OK":
                failed = True
                break
        seconds = time.monotonic() - started
        run = ToolRun(("tcl", *commands), 1 if failed else 0, "\n".join(outputs), seconds)
        self.tool.runs.append(run)
        return check_run(run, self.errors, slot=self.slot, tool=self.tool_label, success=success)

    def _close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

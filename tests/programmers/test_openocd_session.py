"""OpenOCD session mode: one server per probe over the Tcl RPC port (a fake server in a thread)."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    SlotPolicy,
    ToolTimeout,
)
from trayline.programmers.openocd import OPENOCD
from trayline.programmers.openocd_session import OpenOcdSessionProgrammer

from .fakes import FakeRunner, fake_tool, load_transcript

Reply = Callable[[str], str | None]
SLEEPERS: list[subprocess.Popen[bytes]] = []


class FakeOpenOcd:
    """Listens on the tcl_port from argv; answers each framed script with ``reply(command)``."""

    def __init__(self, reply: Reply, *, exit_log: str | None = None) -> None:
        self.reply = reply
        self.exit_log = exit_log
        self.spawned: list[list[str]] = []
        self.scripts: list[str] = []
        self.sleepers: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        self.spawned.append(list(argv))
        if self.exit_log is not None:
            log.write_text(self.exit_log)
            proc = subprocess.Popen(["true"], start_new_session=True)
            proc.wait()
            return proc
        port = int(re.search(r"tcl_port (\d+)", " ".join(argv)).group(1))  # type: ignore[union-attr]
        listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._serve, args=(listener,), daemon=True).start()
        proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
        self.sleepers.append(proc)
        SLEEPERS.append(proc)
        return proc

    def _serve(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b"\x1a" in buf:
                raw, buf = buf.split(b"\x1a", 1)
                script = raw.decode()
                self.scripts.append(script)
                match = re.search(r"capture \{(.*)\}\} trayline_out", script)
                command = match.group(1) if match else script
                if command == "shutdown":  # OpenOCD exits after answering
                    conn.sendall(b"shutdown command invoked\x1a")
                    self.sleepers[-1].kill()
                    return
                answer = self.reply(command)
                if answer is None:
                    continue  # hang: never answer
                conn.sendall(answer.encode() + b"\x1a")


@pytest.fixture(autouse=True)
def _no_leftover_servers() -> Iterator[None]:
    """Every fake server process a test started is gone after it."""
    yield
    for proc in SLEEPERS:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    SLEEPERS.clear()


def _prog(tmp_path: Path, fake: FakeOpenOcd, platform: int = 23) -> OpenOcdSessionProgrammer:
    tool = fake_tool(OPENOCD, tmp_path, FakeRunner(), slot="slot 3")
    return OpenOcdSessionProgrammer(
        ProbeInfo("openocd", "SN1"),
        slot="slot 3",
        platform_id=platform,
        policy=SlotPolicy(),
        tool=tool,
        spawn=fake.spawn,
    )


def _ok(command: str) -> str:
    if command.startswith("mdb 0x10000060"):
        return "OK\n0x10000060: 8a 3c 12 f0 77 c2 1e 5b \n"
    if command.startswith("program "):
        return (
            "OK\n** Programming Started **\n** Programming Finished **\n"
            "** Verify Started **\n** Verified OK **\n"
        )
    return "OK\n"


def test_one_server_many_operations(tmp_path: Path) -> None:
    fake = FakeOpenOcd(_ok)
    with _prog(tmp_path, fake) as prog:
        assert prog.read_device_id() == "e00fce688a3c12f077c21e5b"
        prog.write_module(0xB4000, b"\x01" * 64)
        prog.reset()
    (argv,) = fake.spawned
    port = re.search(r"tcl_port (\d+)", " ".join(argv)).group(1)  # type: ignore[union-attr]
    assert argv[1:] == [
        "-f",
        "interface/cmsis-dap.cfg",
        "-c",
        "cmsis_dap_serial SN1",
        "-c",
        "transport select swd",
        "-f",
        "target/nrf52.cfg",
        "-c",
        "adapter speed 1000",
        "-c",
        f"tcl_port {port}; telnet_port disabled; gdb_port disabled",
        "-c",
        "init",
    ]
    first_words = []
    for script in fake.scripts:
        match = re.search(r"capture \{(.*)\}\} trayline_out", script)
        first_words.append(match.group(1).split(" ")[0] if match else script)
    assert first_words == ["mdb", "program", "reset", "shutdown"]


def test_server_that_dies_at_startup_is_parsed_like_a_one_shot_run(tmp_path: Path) -> None:
    log = load_transcript("openocd/cmsis-dap-not-found").stdout
    fake = FakeOpenOcd(_ok, exit_log=log)
    with pytest.raises(ProbeNotFound, match="slot 3: probe not found: Error: unable to find"):
        _prog(tmp_path, fake).read_device_id()


def test_command_error_is_typed(tmp_path: Path) -> None:
    locked = load_transcript("openocd/nrf52-ap-locked").stdout
    fake = FakeOpenOcd(lambda c: "ERR\n" + locked)
    with pytest.raises(ProtectedDevice, match="slot 3: the chip is protected"):
        _prog(tmp_path, fake).read_device_id()


def test_hung_command_kills_the_server_and_the_next_operation_restarts_it(tmp_path: Path) -> None:
    hang = {"on": True}

    def reply(command: str) -> str | None:
        if hang["on"] and command.startswith("mdb"):
            return None
        return _ok(command)

    fake = FakeOpenOcd(reply)
    prog = _prog(tmp_path, fake)
    prog.read_timeout = 0.3
    with pytest.raises(ToolTimeout, match="slot 3: OpenOCD did not answer 'mdb 0x10000060 8'"):
        prog.read_device_id()
    assert fake.sleepers[0].wait(timeout=5) is not None  # the first server's group was killed
    hang["on"] = False
    assert prog.read_device_id() == "e00fce688a3c12f077c21e5b"
    assert len(fake.spawned) == 2
    prog.close()


def test_stm32_halts_under_reset_before_each_operation(tmp_path: Path) -> None:
    fake = FakeOpenOcd(
        lambda c: (
            "OK\n0x1fff7a10: 36 00 27 00 09 47 34 35 33 38 36 31 \n"
            if c.startswith("mdb")
            else "OK\n"
        )
    )
    with _prog(tmp_path, fake, platform=10) as prog:
        assert prog.read_device_id() == "360027000947343533383631"
    assert "reset_config srst_only srst_nogate connect_assert_srst" in fake.spawned[0]
    assert "capture {reset halt}" in fake.scripts[0]

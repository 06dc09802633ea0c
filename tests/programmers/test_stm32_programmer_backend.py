"""STM32CubeProgrammer CLI backend: exact command lines, transcripts mapped to errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    SeveralProbes,
    SlotPolicy,
    TargetNotHalted,
    ToolTimeout,
    VerifyFailed,
)
from trayline.programmers.registry import BadBackendOption
from trayline.programmers.stm32_programmer import (
    STM32_PROGRAMMER,
    Stm32ProgrammerCli,
    open_stm32_programmer,
)
from trayline.programmers.tool import RawRun

from .fakes import FakeRunner, expect_failure, fake_tool, tool_request

SN = "37FF6D064E4B353422431143"
CONNECT = ["-c", "port=SWD", f"sn={SN}", "mode=UR"]


def _prog(
    tmp_path: Path, runner: FakeRunner, *, allow_unlock: bool = False, platform: int = 10
) -> Stm32ProgrammerCli:
    tool = fake_tool(STM32_PROGRAMMER, tmp_path, runner, slot="slot 4")
    return Stm32ProgrammerCli(
        ProbeInfo("stm32-programmer", SN),
        slot="slot 4",
        platform_id=platform,
        policy=SlotPolicy(allow_unlock=allow_unlock),
        tool=tool,
    )


def test_uid_command_line(tmp_path: Path) -> None:
    runner = FakeRunner(["stm32_programmer/r32-uid"])
    assert _prog(tmp_path, runner).read_device_id() == "360027000947343533383631"
    assert runner.argvs == [[*CONNECT, "-r32", "0x1fff7a10", "3"]]


def test_write_verify_command_line(tmp_path: Path) -> None:
    runner = FakeRunner(["stm32_programmer/write-verify-ok"])
    prog = _prog(tmp_path, runner)
    assert prog.write_module(0x08080000, b"\x07" * 2780).verified
    path = prog.workdir() / "module-08080000.bin"
    assert runner.argvs == [[*CONNECT, "-w", str(path), "0x08080000", "-v"]]
    assert path.read_bytes() == b"\x07" * 2780


def test_reset(tmp_path: Path) -> None:
    runner = FakeRunner([RawRun(0, "MCU Reset\n\nSoftware reset is performed\n")])
    _prog(tmp_path, runner).reset()
    assert runner.argvs == [[*CONNECT, "-rst"]]


@pytest.mark.parametrize(
    ("transcript", "error", "words"),
    [
        ("stm32_programmer/no-probe", ProbeNotFound, "No debug probe detected"),
        ("stm32_programmer/no-target", TargetNotHalted, "No STM32 target found"),
        ("stm32_programmer/rdp-protected", ProtectedDevice, "nothing was erased"),
        ("stm32_programmer/hang", ToolTimeout, "was killed"),
    ],
)
def test_read_failures(tmp_path: Path, transcript: str, error: type[Exception], words: str) -> None:
    prog = _prog(tmp_path, FakeRunner([transcript]))
    expect_failure(prog.read_device_id, error, slot="slot 4", words=words)


def test_verify_failure(tmp_path: Path) -> None:
    with pytest.raises(VerifyFailed, match="slot 4: verify failed: Error: Data mismatch"):
        _prog(tmp_path, FakeRunner(["stm32_programmer/verify-failed"])).write_module(
            0x08080000, b"\0" * 128
        )


def test_rdp_regressed_only_when_allowed(tmp_path: Path) -> None:
    runner = FakeRunner(
        [
            "stm32_programmer/rdp-protected",
            RawRun(0, "Option Bytes successfully programmed\n"),
            "stm32_programmer/r32-uid",
        ]
    )
    _prog(tmp_path, runner, allow_unlock=True).read_device_id()
    assert runner.argvs[1] == [*CONNECT, "-ob", "RDP=0xAA"]


def test_nrf_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadBackendOption, match="Electron's STM32 only"):
        _prog(tmp_path, FakeRunner(), platform=26)


def test_open_without_serial_with_two_stlinks(tmp_path: Path) -> None:
    request = tool_request(tmp_path, "STM32_Programmer_CLI", slot="slot 4", platform_id=10)
    runner = FakeRunner(["stm32_programmer/list-two"])
    with pytest.raises(SeveralProbes, match="slot 4: 2 ST-LINKs attached"):
        open_stm32_programmer(request, runner=runner)
    assert runner.argvs == [["--list", "st-link"]]

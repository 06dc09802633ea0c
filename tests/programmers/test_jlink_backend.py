"""JLinkExe backend: exact command lines and command files, transcripts mapped to errors."""

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
    ToolFailed,
    ToolTimeout,
    VerifyFailed,
)
from trayline.programmers.jlink import JLINK, JLinkProgrammer, open_jlink, parse_emu_list
from trayline.programmers.tool import RawRun

from .fakes import FakeRunner, expect_failure, fake_tool, load_transcript, tool_request


def _prog(
    tmp_path: Path, runner: FakeRunner, *, platform: int = 13, allow_unlock: bool = False
) -> JLinkProgrammer:
    tool = fake_tool(JLINK, tmp_path, runner, slot="slot 2")
    return JLinkProgrammer(
        ProbeInfo("jlink", "51012345"),
        slot="slot 2",
        platform_id=platform,
        policy=SlotPolicy(allow_unlock=allow_unlock),
        tool=tool,
    )


def _script(runner: FakeRunner, call: int = 0) -> list[str]:
    argv = runner.calls[call].argv
    return Path(argv[argv.index("-CommandFile") + 1]).read_text().splitlines()


def test_device_id_command_line_and_file(tmp_path: Path) -> None:
    runner = FakeRunner(["jlink/mem8-device-id"])
    prog = _prog(tmp_path, runner)
    assert prog.read_device_id() == "e00fce688a3c12f077c21e5b"
    script = prog.workdir() / "step001.jlink"
    assert runner.argvs == [
        [
            "-SelectEmuBySN",
            "51012345",
            "-device",
            "NRF52840_XXAA",
            "-if",
            "SWD",
            "-speed",
            "4000",
            "-autoconnect",
            "1",
            "-ExitOnError",
            "1",
            "-NoGui",
            "1",
            "-CommandFile",
            str(script),
        ]
    ]
    assert _script(runner) == ["mem8 0x10000060 8", "exit"]


def test_electron_device_name(tmp_path: Path) -> None:
    prog = _prog(tmp_path, FakeRunner(), platform=10)
    assert prog.command_line(Path("x.jlink"))[2:4] == ["-device", "STM32F205RG"]


def test_write_uses_loadbin_and_verifybin(tmp_path: Path) -> None:
    runner = FakeRunner(["jlink/loadbin-verify-ok"])
    prog = _prog(tmp_path, runner)
    assert prog.write_module(0xD4000, b"\x11" * 3316).verified
    module = prog.workdir() / "module-000d4000.bin"
    assert _script(runner) == [
        "h",
        f"loadbin {module} 0x000d4000",
        f"verifybin {module} 0x000d4000",
        "exit",
    ]


def test_reset_and_go(tmp_path: Path) -> None:
    runner = FakeRunner([RawRun(0, "J-Link>r\nReset delay: 0 ms\nJ-Link>g\nJ-Link>exit\n")])
    _prog(tmp_path, runner).reset()
    assert _script(runner) == ["r", "g", "exit"]


def test_large_read_uses_savebin(tmp_path: Path) -> None:
    runner = FakeRunner()
    prog = _prog(tmp_path, runner)
    path = prog.workdir() / "read-00030000-1000.bin"

    def savebin(argv: object) -> RawRun:
        path.write_bytes(b"\xab" * 1000)
        return RawRun(
            0,
            "J-Link>savebin ...\nReading 1000 bytes from addr 0x00030000 into "
            "file...O.K.\nJ-Link>exit\n",
        )

    runner.responses.append(savebin)
    assert prog.read_memory(0x30000, 1000) == b"\xab" * 1000
    assert _script(runner) == [f"savebin {path} 0x00030000 1000", "exit"]


@pytest.mark.parametrize(
    ("transcript", "error", "words"),
    [
        ("jlink/usb-failed", ProbeNotFound, "J-Link not found"),
        ("jlink/cannot-connect-target", TargetNotHalted, "Cannot connect to target"),
        ("jlink/secured", ProtectedDevice, "never unlocks"),
        ("jlink/hang", ToolTimeout, "was killed"),
    ],
)
def test_read_failures(tmp_path: Path, transcript: str, error: type[Exception], words: str) -> None:
    prog = _prog(tmp_path, FakeRunner([transcript]))
    expect_failure(prog.read_device_id, error, slot="slot 2", words=words)


def test_protected_is_refused_even_when_unlock_is_allowed(tmp_path: Path) -> None:
    runner = FakeRunner(["jlink/secured"])
    with pytest.raises(ToolFailed, match="jlink cannot recover"):
        _prog(tmp_path, runner, allow_unlock=True).read_device_id()
    assert len(runner.calls) == 1


def test_verify_failure(tmp_path: Path) -> None:
    with pytest.raises(VerifyFailed, match="slot 2: verify failed: Verify failed @ address"):
        _prog(tmp_path, FakeRunner(["jlink/verify-failed"])).write_module(0xD4000, b"\0" * 3316)


def test_open_without_serial_several(tmp_path: Path) -> None:
    request = tool_request(tmp_path, "JLinkExe", slot="slot 2")
    with pytest.raises(SeveralProbes, match=r"slot 2: 2 J-Links attached \(51012345, 51067890\)"):
        open_jlink(request, runner=FakeRunner(["jlink/emulist-two"]))


def test_open_without_serial_picks_the_only_one(tmp_path: Path) -> None:
    request = tool_request(tmp_path, "JLinkExe", slot="slot 2")
    runner = FakeRunner(["jlink/emulist-one", "jlink/mem8-device-id"])
    with open_jlink(request, runner=runner) as prog:
        prog.read_device_id()
    assert runner.argvs[1][:2] == ["-SelectEmuBySN", "51012345"]


def test_open_without_jlink(tmp_path: Path) -> None:
    request = tool_request(tmp_path, "JLinkExe", slot="slot 2")
    with pytest.raises(ProbeNotFound, match="slot 2: no J-Link attached"):
        open_jlink(request, runner=FakeRunner(["jlink/usb-failed"]))


def test_parse_emu_list() -> None:
    assert parse_emu_list(load_transcript("jlink/emulist-two").stdout) == [
        ("51012345", "J-Link V11"),
        ("51067890", "J-Link PLUS"),
    ]


def test_read_many_is_one_command_file(tmp_path: Path) -> None:
    out = "J-Link>mem8 0x000f4200 4\n000F4200 = 00 40 0F 00 \n"
    out += "J-Link>mem8 0x000b4000 2\n000B4000 = FF FF \n"
    runner = FakeRunner([RawRun(0, out)])
    assert _prog(tmp_path, runner).read_many([(0xF4200, 4), (0xB4000, 2)]) == [
        b"\x00\x40\x0f\x00",
        b"\xff\xff",
    ]
    assert _script(runner) == ["mem8 0x000f4200 4", "mem8 0x000b4000 2", "exit"]


def test_verify_uses_verifybin(tmp_path: Path) -> None:
    runner = FakeRunner([RawRun(0, "Verify successful.\n"), "jlink/verify-failed"])
    prog = _prog(tmp_path, runner)
    assert prog.verify(0xB4000, b"\x01" * 32) is True
    assert prog.verify(0xB4000, b"\x01" * 32) is False
    path = prog.workdir() / "verify-000b4000.bin"
    assert _script(runner) == [f"verifybin {path} 0x000b4000", "exit"]


def test_read_many_of_adjacent_ranges_keeps_them_apart(tmp_path: Path) -> None:
    out = "J-Link>mem8 0x000f4200 4\n000F4200 = 00 40 0F 00 \n"
    out += "J-Link>mem8 0x000f4204 4\n000F4204 = 01 02 03 04 \n"
    runner = FakeRunner([RawRun(0, out)])
    assert _prog(tmp_path, runner).read_many([(0xF4200, 4), (0xF4204, 4)]) == [
        b"\x00\x40\x0f\x00",
        b"\x01\x02\x03\x04",
    ]

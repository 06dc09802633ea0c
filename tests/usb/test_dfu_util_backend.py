"""The ``dfu-util`` backend on recorded-style transcripts: command lines and every outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from trayline.programmers.base import (
    ProbeNotFound,
    ProgrammerError,
    SeveralProbes,
    ToolFailed,
    VerifyFailed,
)
from trayline.programmers.dfu_util import SPEC, DfuUtilProgrammer, open_dfu_util, parse_list
from trayline.programmers.registry import OpenRequest
from trayline.programmers.tool import RawRun, Tool
from trayline.virtual.modulebuild import ModuleSpec, build_module

TRANSCRIPTS = Path(__file__).parent / "transcripts" / "dfu_util"
DEVICE = "e00fce68aabbccddeeff0011"


def transcript(name: str) -> RawRun:
    path = next(TRANSCRIPTS.glob(f"{name}*.txt"))
    code = 74 if ".exit74" in path.name else 0
    return RawRun(code, path.read_text())


@dataclass
class Script:
    """Plays transcripts in order; writes ``upload`` bytes where dfu-util would (-U FILE)."""

    runs: list[tuple[str, bytes]]
    calls: list[list[str]] = field(default_factory=list)

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, cwd: Path | None
    ) -> RawRun:
        self.calls.append(list(argv[1:]))
        name, upload = self.runs.pop(0)
        if "-U" in argv and upload:
            Path(argv[argv.index("-U") + 1]).write_bytes(upload)
        return transcript(name)


def programmer(script: Script, tmp_path: Path) -> DfuUtilProgrammer:
    fake = tmp_path / "dfu-util"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    tool = Tool(SPEC, slot="slot 1", runner=script, executable=str(fake))
    return DfuUtilProgrammer(tool, DEVICE, slot="slot 1", platform_id=13)


def _user(body: int = 4000) -> bytes:
    return build_module(ModuleSpec(platform=13, function=5, index=1, version=6, start=0xD4000,
                                   body=body))  # fmt: skip


def test_write_uses_device_os_flash_util_command_lines_and_verifies(tmp_path: Path) -> None:
    data = _user()
    script = Script([("download-ok", b""), ("upload-ok", data)])
    with programmer(script, tmp_path) as prog:
        result = prog.write_module(0xD4000, data)
    assert result.verified and result.bytes_written == len(data)
    download, upload = script.calls
    assert download[:8] == ["-d", "2b04:d00d", "-a", "0", "-S", DEVICE, "-s", "0x000d4000"]
    assert download[8] == "-D" and Path(download[9]).name == "module-000d4000.bin"
    assert upload[:8] == [
        "-d",
        "2b04:d00d",
        "-a",
        "0",
        "-S",
        DEVICE,
        "-s",
        f"0x000d4000:{len(data)}",
    ]
    assert upload[8] == "-U"


def test_read_back_that_differs_is_verify_failed(tmp_path: Path) -> None:
    data = _user()
    script = Script([("download-ok", b""), ("upload-ok", bytes([data[0] ^ 0xFF]) + data[1:])])
    with programmer(script, tmp_path) as prog, pytest.raises(VerifyFailed, match="slot 1"):
        prog.write_module(0xD4000, data)


def test_reset_is_leave_with_an_empty_download(tmp_path: Path) -> None:
    script = Script([("leave-ok", b"")])
    with programmer(script, tmp_path) as prog:
        prog.reset()
    [call] = script.calls
    assert call[6:8] == ["-s", "0x00000000:leave"] and call[8] == "-D"


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("no-device", ProbeNotFound, "no device in DFU mode"),
        ("several-devices", SeveralProbes, "several DFU devices"),
        ("error-status", ToolFailed, "dfuERROR"),
        ("read-only", ProgrammerError, "not writeable"),
    ],
)
def test_failures_become_typed_errors_naming_the_slot(
    tmp_path: Path, name: str, error: type[ProgrammerError], words: str
) -> None:
    script = Script([(name, b"")])
    with programmer(script, tmp_path) as prog, pytest.raises(error) as info:
        prog.write_module(0xD4000, _user())
    assert type(info.value) is error
    assert str(info.value).startswith("slot 1: ") and words in str(info.value)
    assert "$ " in info.value.transcript  # the output is kept for the operator


def test_bootloader_is_refused_before_running_anything(tmp_path: Path) -> None:
    boot = build_module(ModuleSpec(platform=13, function=2, index=0, version=1200, start=0xF4000,
                                   prefix_offset=0x200))  # fmt: skip
    script = Script([])
    with programmer(script, tmp_path) as prog, pytest.raises(ProgrammerError, match="usb backend"):
        prog.write_module(0xF4000, boot)
    assert script.calls == []


def test_list_keeps_particle_dfu_devices_once_each() -> None:
    probes = parse_list(transcript("list").stdout)
    assert [(p.probe_id, p.port) for p in probes] == [
        (DEVICE, "1-1.2"),
        ("3a0031000c51353432383931", "1-1.3"),
    ]
    assert "platform 13" in probes[0].description and "platform 10" in probes[1].description


def test_open_without_probe_picks_the_only_device_or_refuses(tmp_path: Path) -> None:
    fake = tmp_path / "dfu-util"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    request = OpenRequest(probe_id="", slot="slot 2", platform_id=13, options={"tool": str(fake)})
    several = Tool(SPEC, slot="slot 2", runner=Script([("list", b"")]), executable=str(fake))
    with pytest.raises(SeveralProbes, match="slot 2"):
        open_dfu_util(request, several)
    none = Tool(SPEC, slot="slot 2", runner=Script([("no-device", b"")]), executable=str(fake))
    with pytest.raises(ProbeNotFound, match="slot 2"):
        open_dfu_util(request, none)

"""Whole flows (write, read back, scan) through the OpenOCD and J-Link command lines, against a
fake tool that acts on a flash image — plus every backend class checked against the protocol."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from firmware.modulekit import build_module
from trayline.programmers.base import ProbeInfo, SlotPolicy
from trayline.programmers.jlink import JLINK, JLinkProgrammer
from trayline.programmers.tool import RawRun, Tool

from .fakes import FakeRunner, fake_executable
from .memimage import FakeOpenOcdChip, FlashImage, fixture, openocd_on


def test_openocd_writes_a_gen3_set_and_scans_it_back(tmp_path: Path) -> None:
    chip = FakeOpenOcdChip(FlashImage(0, 0x100000))
    with openocd_on(chip, tmp_path, platform=14) as prog:
        for name in (
            "080_bootloader-xenon.bin",
            "080_system-part1-xenon.bin",
            "080_user-part-xenon.bin",
        ):
            from trayline.core.modules import parse_module

            data = fixture(name)
            prog.write_module(parse_module(data).start_address, data)
        found = prog.read_modules()
    assert [(m.function, m.index, m.version, m.valid) for m in found] == [
        (4, 1, 312, True),
        (5, 1, 5, True),
        (2, 0, 211, True),
    ]
    # 3 writes, then the scan: one run for every region head (and the SoftDevice info
    # structure: erased here), one for the three module bodies (0xB4000 lies inside the
    # system part found at 0x30000: its bytes are not a module).
    assert chip.runs == 3 + 1 + 1


def test_jlink_flow_with_bit_flip_is_caught_by_its_own_verify(tmp_path: Path) -> None:
    flash = FlashImage(0, 0x100000)
    user = build_module(platform=13, function=5, index=2, version=6, start=0xB4000, body=512)

    def jlink(argv: Sequence[str]) -> RawRun:
        script = Path(argv[argv.index("-CommandFile") + 1]).read_text().splitlines()
        out = []
        for line in script:
            if m := re.fullmatch(r"loadbin (\S+) (0x[0-9a-f]+)", line):
                data = bytearray(Path(m.group(1)).read_bytes())
                data[7] ^= 0x10  # the chip stores one bit wrong
                flash.write(int(m.group(2), 16), bytes(data))
                out.append("O.K.")
            elif m := re.fullmatch(r"verifybin (\S+) (0x[0-9a-f]+)", line):
                want = Path(m.group(1)).read_bytes()
                ok = flash.read(int(m.group(2), 16), len(want)) == want
                out.append("Verify successful." if ok else "Verify failed @ address 0x000B4007.")
                if not ok:
                    return RawRun(1, "\n".join(out) + "\n")
        return RawRun(0, "\n".join(out) + "\n")

    tool = Tool(
        JLINK,
        slot="slot 2",
        runner=FakeRunner([jlink]),
        executable=fake_executable(tmp_path, "JLinkExe"),
    )
    prog = JLinkProgrammer(
        ProbeInfo("jlink", "1"), slot="slot 2", platform_id=13, policy=SlotPolicy(), tool=tool
    )
    from trayline.programmers.base import VerifyFailed

    with pytest.raises(VerifyFailed, match="slot 2: verify failed: Verify failed @ address"):
        prog.write_module(0xB4000, user)


@pytest.mark.parametrize(
    "module_class",
    [
        "trayline.programmers.openocd:OpenOcdProgrammer",
        "trayline.programmers.openocd_session:OpenOcdSessionProgrammer",
        "trayline.programmers.nrfjprog:NrfjprogProgrammer",
        "trayline.programmers.jlink:JLinkProgrammer",
        "trayline.programmers.stm32_programmer:Stm32ProgrammerCli",
        "trayline.programmers.pyocd_probe:PyOcdProgrammer",
        "trayline.programmers.particle_cli:ParticleCliProgrammer",
        "trayline.programmers.daplink_drive:DaplinkProgrammer",
    ],
)
def test_every_backend_class_speaks_the_protocol(module_class: str) -> None:
    import importlib

    module_name, _, class_name = module_class.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    for member in (
        "read_device_id",
        "read_memory",
        "read_modules",
        "write_module",
        "verify",
        "reset",
        "close",
        "__enter__",
        "__exit__",
    ):
        assert callable(getattr(cls, member)), member
    assert isinstance(cls.name, str) and cls.capabilities

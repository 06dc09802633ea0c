"""A device's internal flash as bytes, for tests: erased to 0xFF, modules placed at their address.

Backends and the scanner read memory through ``read_memory(address, length)``;
:class:`FlashImage` answers those reads the way a probe reading a real chip
does, including refusing reads outside the flash. :class:`FakeOpenOcdChip`
answers one-shot OpenOCD command lines from such an image, so whole flows
(write, read back, scan) run through the real argument lists and parsers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from trayline.core.modules import parse_module
from trayline.programmers.base import ProbeInfo, SlotPolicy
from trayline.programmers.openocd import OPENOCD, OpenOcdProgrammer
from trayline.programmers.tool import RawRun

from .fakes import FakeRunner, fake_tool

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"


class FlashImage:
    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.data = bytearray(b"\xff" * size)
        self.reads: list[tuple[int, int]] = []

    def place(self, module: bytes) -> None:
        parsed = parse_module(module)
        image = parsed.flash_image(module)
        self.write(parsed.start_address, image)

    def write(self, address: int, data: bytes) -> None:
        offset = address - self.base
        assert offset >= 0 and offset + len(data) <= len(self.data)
        self.data[offset : offset + len(data)] = data

    def read(self, address: int, length: int) -> bytes:
        self.reads.append((address, length))
        offset = address - self.base
        if offset < 0 or offset + length > len(self.data):
            raise ValueError(f"read outside flash: {address:#x}+{length}")
        return bytes(self.data[offset : offset + length])


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def gen3_image() -> FlashImage:
    return FlashImage(0, 0x100000)


def electron_image() -> FlashImage:
    return FlashImage(0x08000000, 0x100000)


class FakeOpenOcdChip:
    """Answers one-shot OpenOCD runs (mdb, dump_image, program) from a FlashImage."""

    def __init__(self, flash: FlashImage) -> None:
        self.flash = flash
        self.runs = 0

    def __call__(self, argv: Sequence[str]) -> RawRun:
        self.runs += 1
        out = ["Open On-Chip Debugger 0.12.0"]
        for command in [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]:
            if m := re.fullmatch(r"mdb (0x[0-9a-f]+) (\d+)", command):
                addr, n = int(m.group(1), 16), int(m.group(2))
                data = self.flash.read(addr, n)
                for off in range(0, n, 32):
                    chunk = data[off : off + 32]
                    out.append(f"0x{addr + off:08x}: " + "".join(f"{b:02x} " for b in chunk))
            elif m := re.fullmatch(r"dump_image (\S+) (0x[0-9a-f]+) (\d+)", command):
                addr, n = int(m.group(2), 16), int(m.group(3))
                Path(m.group(1)).write_bytes(self.flash.read(addr, n))
                out.append(f"dumped {n} bytes in 0.1s (100.000 KiB/s)")
            elif m := re.fullmatch(r"program (\S+) (0x[0-9a-f]+) verify", command):
                self.flash.write(int(m.group(2), 16), Path(m.group(1)).read_bytes())
                out += [
                    "** Programming Started **",
                    "** Programming Finished **",
                    "** Verify Started **",
                    "** Verified OK **",
                ]
        return RawRun(0, "\n".join(out) + "\n")


def openocd_on(chip: FakeOpenOcdChip, tmp_path: Path, *, platform: int) -> OpenOcdProgrammer:
    """A one-shot OpenOCD programmer whose every run (up to 20) is answered by ``chip``."""
    tool = fake_tool(OPENOCD, tmp_path, FakeRunner([chip] * 20), slot="slot 1")
    return OpenOcdProgrammer(
        ProbeInfo("openocd", "SN"),
        slot="slot 1",
        platform_id=platform,
        policy=SlotPolicy(),
        tool=tool,
    )

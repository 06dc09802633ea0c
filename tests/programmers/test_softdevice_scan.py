"""The Gen 3 SoftDevice, found from Nordic's info structure at 0x3000 by every memory backend.

Its prefix is dropped when it is written, so a prefix scan cannot see it; the
info structure (magic 0x51B1E5DB at 0x3004, end address at 0x3008, firmware ID
at 0x300C) can be read over any probe. These tests put the real S140 6.1.1
SoftDevice (firmware ID 182) in a memory image and read it back through the
scan, a plain memory backend and the batched OpenOCD command line.
"""

from __future__ import annotations

import struct
from pathlib import Path

from trayline.core.modules import ModuleFunction
from trayline.programmers.base import ProbeInfo, SlotPolicy
from trayline.programmers.memory_backend import MemoryProgrammer
from trayline.programmers.scan import (
    SOFTDEVICE_INFO,
    SOFTDEVICE_MAGIC,
    scan_modules,
    softdevice_from_info,
)

from .memimage import FakeOpenOcdChip, FlashImage, electron_image, fixture, gen3_image, openocd_on

SOFTDEVICE = "argon-softdevice-6.1.1.bin"
SOFTDEVICE_END = 0x26000  # what the fixture's info structure says at 0x3008


def _with_softdevice() -> FlashImage:
    flash = gen3_image()
    flash.place(fixture(SOFTDEVICE))  # written without its 24-byte prefix, as on a device
    flash.place(fixture("080_system-part1-xenon.bin"))
    return flash


def _info(magic: int, end: int, firmware_id: int) -> bytes:
    return struct.pack("<IIIHxx", 0x18, magic, end, firmware_id)


class _FlashProgrammer(MemoryProgrammer):
    """The smallest memory backend: reads answered from a FlashImage."""

    def __init__(self, flash: FlashImage, platform_id: int) -> None:
        super().__init__(
            ProbeInfo("flash", "image"), slot="slot 9", platform_id=platform_id, policy=SlotPolicy()
        )
        self.flash = flash

    def _read(self, address: int, length: int) -> bytes:
        return self.flash.read(address, length)


def test_the_scan_reports_the_softdevice_from_its_info_structure() -> None:
    found = scan_modules(_with_softdevice().read, 14, softdevice=True)
    radio = found[0]
    assert (radio.function, radio.index, radio.version) == (ModuleFunction.RADIO_STACK, 0, 182)
    assert (radio.address, radio.size) == (0x1000, SOFTDEVICE_END - 0x1000)
    assert radio.platform_id == 14 and radio.valid and radio.sha256 is None
    assert [(m.function, m.address) for m in found[1:]] == [(ModuleFunction.SYSTEM_PART, 0x30000)]


def test_without_the_info_structure_no_softdevice_is_reported() -> None:
    flash = gen3_image()
    flash.place(fixture("080_system-part1-xenon.bin"))
    found = scan_modules(flash.read, 14, softdevice=True)
    assert [m.function for m in found] == [ModuleFunction.SYSTEM_PART]
    assert (SOFTDEVICE_INFO, 16) in flash.reads  # it looked, and found erased flash


def test_the_softdevice_is_only_read_when_asked_for() -> None:
    flash = _with_softdevice()
    found = scan_modules(flash.read, 14)
    assert ModuleFunction.RADIO_STACK not in [m.function for m in found]
    assert all(address != SOFTDEVICE_INFO for address, _ in flash.reads)


def test_an_electron_has_no_softdevice_to_read() -> None:
    flash = electron_image()
    assert scan_modules(flash.read, 10, softdevice=True) == []
    assert all(address != SOFTDEVICE_INFO for address, _ in flash.reads)


def test_info_bytes_are_judged_by_magic_and_a_plausible_end() -> None:
    radio = softdevice_from_info(_info(SOFTDEVICE_MAGIC, 0x26000, 202), 13)
    assert radio is not None and (radio.version, radio.size) == (202, 0x25000)
    assert softdevice_from_info(b"\xff" * 16, 13) is None
    assert softdevice_from_info(_info(SOFTDEVICE_MAGIC ^ 1, 0x26000, 202), 13) is None
    assert softdevice_from_info(_info(SOFTDEVICE_MAGIC, 0x1000, 202), 13) is None
    assert softdevice_from_info(_info(SOFTDEVICE_MAGIC, 0x30000, 202), 13) is None
    assert softdevice_from_info(_info(SOFTDEVICE_MAGIC, 0x26000, 202)[:12], 13) is None


def test_every_memory_backend_reports_it_in_read_modules() -> None:
    with _FlashProgrammer(_with_softdevice(), 13) as prog:
        found = prog.read_modules()
    assert (found[0].function, found[0].version, found[0].address) == (8, 182, 0x1000)


def test_a_memory_backend_on_a_unit_without_softdevice_reports_none() -> None:
    flash = gen3_image()
    flash.place(fixture("080_system-part1-xenon.bin"))
    with _FlashProgrammer(flash, 13) as prog:
        assert [m.function for m in prog.read_modules()] == [ModuleFunction.SYSTEM_PART]


def test_openocd_reads_the_info_structure_in_the_heads_run(tmp_path: Path) -> None:
    chip = FakeOpenOcdChip(_with_softdevice())
    with openocd_on(chip, tmp_path, platform=14) as prog:
        found = prog.read_modules()
    assert [(m.function, m.version) for m in found] == [(8, 182), (4, 312)]
    assert chip.runs == 2  # one run for every head and the info structure, one for the body

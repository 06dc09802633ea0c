"""DfuSe memory strings of spec §2.5: layout, access letters, read-only refusals."""

from __future__ import annotations

import pytest

from trayline.usb.dfu_memory import MemoryStringError, parse_memory_string
from trayline.usb.dfu_protocol import (
    TRANSFER_SIZE,
    functional_descriptor,
    parse_functional_descriptor,
)
from trayline.usb.virtual.dfu import ELECTRON_INTERNAL, GEN3_DCT, GEN3_INTERNAL, memory_strings


def test_gen3_internal_flash_layout() -> None:
    layout = parse_memory_string(GEN3_INTERNAL)
    assert layout.name == "Internal Flash"
    assert len(layout.sectors) == 1 + 47 + 192 + 4 + 4 + 8 == 256
    assert (layout.start, layout.end) == (0, 0x100000)
    assert not layout.sectors[0].writable and layout.sectors[0].readable  # the MBR: 'a'
    assert layout.sectors[1].start == 0x1000 and layout.sectors[1].erasable
    top = [s for s in layout.sectors if s.start >= 0xF8000]
    assert len(top) == 8 and not any(s.writable for s in top)


def test_write_to_user_part_allowed_mbr_and_bootloader_top_refused() -> None:
    layout = parse_memory_string(GEN3_INTERNAL)
    assert len(layout.check_write(0xB4000, 256 * 1024)) == 64
    with pytest.raises(MemoryStringError, match="read-only"):
        layout.check_write(0x0, 16)
    with pytest.raises(MemoryStringError, match=r"0x000f8000-0x000f9000 is read-only"):
        layout.check_write(0xF4000, 48 * 1024)  # the whole bootloader region
    with pytest.raises(MemoryStringError, match="not inside"):
        layout.check_write(0xFF000, 0x2000)


def test_electron_sectors_and_bootloader_read_only() -> None:
    layout = parse_memory_string(ELECTRON_INTERNAL)
    sizes = [s.size for s in layout.sectors]
    assert sizes == [0x4000] * 4 + [0x10000] + [0x20000] * 7
    assert layout.start == 0x08000000 and layout.end == 0x08100000
    with pytest.raises(MemoryStringError):
        layout.check_write(0x08000000, 4)
    assert layout.check_write(0x08080000, 100)[0].start == 0x08080000


def test_dct_is_write_without_erase() -> None:
    sector = parse_memory_string(GEN3_DCT).sectors[0]
    assert (sector.size, sector.readable, sector.erasable, sector.writable) == (
        16384,
        True,
        False,
        True,
    )


def test_external_flash_size_by_platform_and_protection_turns_everything_erase_only() -> None:
    boron = parse_memory_string(memory_strings(13, gen3=True)[2])
    tracker = parse_memory_string(memory_strings(26, gen3=True)[2])
    assert (boron.start, boron.end) == (0x80000000, 0x80400000)
    assert tracker.end == 0x80800000
    protected = parse_memory_string(memory_strings(13, gen3=True, protected=True)[0])
    assert all(s.access == 2 for s in protected.sectors)


@pytest.mark.parametrize(
    "text",
    [
        "Internal Flash /0x0/1*004Kg",
        "@Flash /zz/1*004Kg",
        "@Flash /0x0/1*004Kz",
        "@Flash /0x0",
        "@X /0/4Kg",
    ],
)
def test_bad_memory_strings_are_refused(text: str) -> None:
    with pytest.raises(MemoryStringError):
        parse_memory_string(text)


def test_several_address_groups_and_units() -> None:
    layout = parse_memory_string("@Mixed /0x1000/2*512 g/0x8000/1*001Me")
    assert [(s.start, s.size) for s in layout.sectors] == [
        (0x1000, 512),
        (0x1200, 512),
        (0x8000, 1 << 20),
    ]


def test_functional_descriptor_round_trip() -> None:
    assert parse_functional_descriptor(functional_descriptor()) == TRANSFER_SIZE
    assert parse_functional_descriptor(b"") is None

"""scan_modules on memory images built from the real fixture binaries (and Electron modules)."""

from __future__ import annotations

import pytest

from firmware.modulekit import build_module
from trayline.core.modules import parse_module
from trayline.programmers.scan import scan_modules

from .memimage import electron_image, fixture, gen3_image


def _xenon() -> dict[str, bytes]:
    return {
        "bootloader": fixture("080_bootloader-xenon.bin"),
        "system": fixture("080_system-part1-xenon.bin"),
        "user": fixture("080_user-part-xenon.bin"),
    }


def test_gen3_finds_bootloader_system_and_compat_user_part() -> None:
    flash = gen3_image()
    mods = _xenon()
    for data in mods.values():
        flash.place(data)
    found = scan_modules(flash.read, 14)
    assert [(m.function, m.index, m.version, m.address) for m in found] == [
        (4, 1, 312, 0x30000),
        (5, 1, 5, 0xD4000),
        (2, 0, 211, 0xF4000),
    ]
    assert all(m.valid for m in found)
    assert found[0].sha256 == parse_module(mods["system"]).sha256
    assert found[0].size == len(mods["system"])
    assert all(m.platform_id == 14 for m in found)


def test_tracker_user_part_at_b4000() -> None:
    flash = gen3_image()
    for name in (
        "tracker-bootloader@5.6.0.bin",
        "tracker-system-part1@3.1.0-alpha.2.bin",
        "tracker-max-size@5.5.0-rc.1.bin",
    ):
        flash.place(fixture(name))
    found = scan_modules(flash.read, 26)
    assert [(m.function, m.index, m.address) for m in found] == [
        (4, 1, 0x30000),
        (5, 2, 0xB4000),
        (2, 0, 0xF4000),
    ]
    # The 256 KB user part covers 0xD4000: that slot is not read as a module of its own.
    assert not any(addr == 0xD4000 for addr, _ in flash.reads)


def test_erased_flash_has_no_modules() -> None:
    assert scan_modules(gen3_image().read, 13) == []
    assert scan_modules(electron_image().read, 10) == []


def test_garbage_is_not_a_module() -> None:
    flash = gen3_image()
    flash.data[:] = bytes((i * 7919 + 13) & 0xFF for i in range(len(flash.data)))
    assert scan_modules(flash.read, 13) == []


def test_half_written_module_is_found_but_invalid() -> None:
    flash = gen3_image()
    system = fixture("080_system-part1-xenon.bin")
    flash.place(system)
    # A write interrupted half way: the second half of the module is still erased.
    half = len(system) // 2
    flash.write(0x30000 + half, b"\xff" * (len(system) - half))
    (found,) = scan_modules(flash.read, 14)
    assert (found.function, found.index, found.valid) == (4, 1, False)


def test_single_bit_flip_makes_module_invalid() -> None:
    flash = gen3_image()
    flash.place(fixture("080_user-part-xenon.bin"))
    flash.data[0xD4000 + 100] ^= 0x04
    (found,) = scan_modules(flash.read, 14)
    assert not found.valid


def test_prefix_pointing_elsewhere_is_ignored() -> None:
    flash = gen3_image()
    user = bytearray(fixture("080_user-part-xenon.bin"))
    flash.write(0xB4000, bytes(user))  # a 0xD4000 image copied to the wrong slot
    assert scan_modules(flash.read, 14) == []


def test_fast_scan_trusts_stored_sha_without_reading_the_body() -> None:
    flash = gen3_image()
    system = fixture("080_system-part1-xenon.bin")
    flash.place(system)
    (found,) = scan_modules(flash.read, 14, full=False)
    assert found.sha256 == parse_module(system).sha256
    assert max(length for _, length in flash.reads) < 1024


def _electron_set() -> dict[str, bytes]:
    def mod(function: int, index: int, start: int, offset: int, version: int) -> bytes:
        return build_module(
            platform=10,
            function=function,
            index=index,
            version=version,
            start=start,
            prefix_offset=offset,
            body=2048,
            seed=index,
        )

    return {
        "bootloader": mod(2, 0, 0x08000000, 0x184, 1003),
        "system-part2": mod(4, 1, 0x08020000, 0x184, 2302),
        "system-part3": mod(4, 2, 0x08040000, 0x184, 2302),
        "system-part1": mod(4, 3, 0x08060000, 0, 2302),
        "user": mod(5, 1, 0x08080000, 0, 6),
    }


def test_electron_prefix_offsets_per_module() -> None:
    flash = electron_image()
    for data in _electron_set().values():
        flash.place(data)
    found = scan_modules(flash.read, 10)
    assert [(m.function, m.index, m.address) for m in found] == [
        (2, 0, 0x08000000),
        (4, 1, 0x08020000),
        (4, 2, 0x08040000),
        (4, 3, 0x08060000),
        (5, 1, 0x08080000),
    ]
    assert all(m.valid for m in found)


def test_unknown_platform_reads_nothing() -> None:
    flash = gen3_image()
    assert scan_modules(flash.read, 32) == []
    assert flash.reads == []


def test_read_errors_pass_through() -> None:
    def broken(address: int, length: int) -> bytes:
        raise OSError("probe gone")

    with pytest.raises(OSError, match="probe gone"):
        scan_modules(broken, 13)

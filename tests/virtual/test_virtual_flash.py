"""NOR-flash rules of the virtual device: erase units, AND-writes, range refusals, bit flips."""

from __future__ import annotations

import random

import pytest

from trayline.core.skus import get_sku
from trayline.virtual.device import DeviceState, Faults, VirtualDevice
from trayline.virtual.errors import FlashRangeError
from trayline.virtual.identity import make_identity
from trayline.virtual.memory import Flash, geometry_for


def _device(sku: str = "BRN404", faults: Faults | None = None) -> VirtualDevice:
    return VirtualDevice(make_identity(get_sku(sku), random.Random(5)), faults=faults)


def test_fresh_flash_is_erased_and_sized_by_the_memory_map() -> None:
    gen3 = Flash(geometry_for(13))
    electron = Flash(geometry_for(10))
    assert gen3.geometry.base == 0 and gen3.geometry.size == 0x100000
    assert electron.geometry.base == 0x08000000 and electron.geometry.size == 0x100000
    assert gen3.read(0, 16) == b"\xff" * 16
    assert electron.is_erased(0x08000000, 0x100000)


def test_gen3_erases_4k_pages_and_electron_erases_whole_sectors() -> None:
    gen3 = geometry_for(23)
    assert all(end - start == 0x1000 for start, end in gen3.sectors)
    electron = geometry_for(10)
    sizes = [end - start for start, end in electron.sectors]
    assert sizes == [0x4000] * 4 + [0x10000] + [0x20000] * 7
    assert electron.sectors_covering(0x08080010, 0x08080020) == [(0x08080000, 0x080A0000)]


def test_write_can_only_clear_bits_until_erased() -> None:
    flash = Flash(geometry_for(13))
    assert flash.write(0x30000, b"\x0f\xf0") == 0
    assert flash.read(0x30000, 2) == b"\x0f\xf0"
    # 0x0F then 0xF0 without erase: bits cannot go back to 1, the cell holds old & new.
    unset = flash.write(0x30000, b"\xf0\x0f")
    assert unset == 8
    assert flash.read(0x30000, 2) == b"\x00\x00"
    flash.erase(0x30000, 0x30002)
    assert flash.read(0x30000, 2) == b"\xff\xff"
    assert flash.write(0x30000, b"\xf0\x0f") == 0
    assert flash.read(0x30000, 2) == b"\xf0\x0f"


def test_erase_takes_the_whole_unit_with_it() -> None:
    flash = Flash(geometry_for(10))
    flash.write(0x08080000, b"\x00" * 4)
    flash.write(0x0809FFF0, b"\x00" * 4)
    units = flash.erase(0x08080000, 0x08080004)
    assert units == [(0x08080000, 0x080A0000)]
    assert flash.read(0x0809FFF0, 4) == b"\xff" * 4


@pytest.mark.parametrize(
    ("address", "length"),
    [(0x100000 - 2, 4), (0x100000, 1), (-4, 4), (0x10001000, 4)],
)
def test_writes_and_erases_outside_flash_are_refused_before_anything_changes(
    address: int, length: int
) -> None:
    flash = Flash(geometry_for(13))
    before = flash.image()
    with pytest.raises(FlashRangeError, match="outside the internal flash"):
        flash.write(address, b"\x00" * length)
    with pytest.raises(FlashRangeError):
        flash.erase(address, address + length)
    assert flash.image() == before


def test_electron_refuses_gen3_addresses() -> None:
    flash = Flash(geometry_for(10))
    with pytest.raises(FlashRangeError, match="0x08000000-0x08100000"):
        flash.write(0x30000, b"\x00")


def test_flip_bit_fault_changes_exactly_one_bit_of_what_was_written() -> None:
    device = _device(faults=Faults(flip_bit_on_write=True))
    data = bytes(range(256)) * 16
    device.erase(0x40000, 0x40000 + len(data))
    device.write(0x40000, data)
    stored = device.flash.read(0x40000, len(data))
    diff = int.from_bytes(stored, "little") ^ int.from_bytes(data, "little")
    assert diff.bit_count() == 1


def test_flip_bit_count_is_spent_write_by_write() -> None:
    device = _device(faults=Faults(flip_bit_on_write=1))
    data = b"\x55" * 64
    for address in (0x50000, 0x51000):
        device.erase(address, address + 64)
        device.write(address, data)
    assert device.flash.read(0x50000, 64) != data
    assert device.flash.read(0x51000, 64) == data
    assert device.state.bit_flips_used == 1


def test_a_flip_count_is_remembered_in_the_device_state() -> None:
    state = DeviceState(bit_flips_used=2)
    device = VirtualDevice(
        make_identity(get_sku("BRN404"), random.Random(1)),
        state=state,
        faults=Faults(flip_bit_on_write=2),
    )
    device.erase(0x50000, 0x50010)
    device.write(0x50000, b"\x00" * 16)
    assert device.flash.read(0x50000, 16) == b"\x00" * 16

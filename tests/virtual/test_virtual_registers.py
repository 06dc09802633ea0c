"""Device-ID registers, UICR and protection: what a probe reads from silicon."""

from __future__ import annotations

import random

import pytest

from trayline.core.ids import DeviceId
from trayline.core.platforms import GEN3_UICR_WORDS
from trayline.core.skus import CATALOG, get_sku
from trayline.virtual.device import UICR_APPROTECT, Faults, VirtualDevice
from trayline.virtual.errors import DeviceProtected, UnmappedAddress
from trayline.virtual.identity import id_register_bytes, make_identity


@pytest.mark.parametrize("sku_name", sorted(CATALOG))
def test_every_catalog_sku_reads_its_device_id_from_the_spec_register(sku_name: str) -> None:
    sku = get_sku(sku_name)
    identity = make_identity(sku, random.Random(sku_name))
    device = VirtualDevice(identity)
    DeviceId.parse(identity.device_id)
    assert identity.serial_number[:4] in sku.serial_prefixes
    if sku.generation == 3:
        raw = device.read_memory(0x10000060, 8)
        assert "e00fce68" + raw.hex() == identity.device_id
        assert identity.mobile_secret and len(identity.mobile_secret) == 15
    else:
        raw = device.read_memory(0x1FFF7A10, 12)
        assert raw.hex() == identity.device_id
        assert identity.mobile_secret is None


def test_a_gen3_id_without_the_nordic_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="e00fce68"):
        id_register_bytes(13, "0123456789abcdef01234567")


def test_ficr_around_the_device_id_reads_erased() -> None:
    device = VirtualDevice(make_identity(get_sku("B404"), random.Random(2)))
    assert device.read_memory(0x10000058, 8) == b"\xff" * 8
    assert device.read_memory(0x10000060, 4) == bytes.fromhex(device.device_id[8:16])


def test_factory_uicr_words_and_nor_rules() -> None:
    device = VirtualDevice(make_identity(get_sku("BRN404"), random.Random(3)))
    assert device.read_memory(UICR_APPROTECT, 4) == b"\xff" * 4
    device.write_factory_uicr()
    for address, value in GEN3_UICR_WORDS.items():
        assert device.read_memory(address, 4) == value.to_bytes(4, "little")
    device.write_uicr(0x10001014, 0xFFFFFFFF)  # cannot set bits back without an erase
    assert device.read_memory(0x10001014, 4) == (0x000F4000).to_bytes(4, "little")


def test_protected_device_refuses_reads_writes_and_erases_until_mass_erase() -> None:
    device = VirtualDevice(
        make_identity(get_sku("BRN404"), random.Random(4)), faults=Faults(protected=True)
    )
    for action in (
        lambda: device.read_memory(0x10000060, 8),
        lambda: device.write(0x30000, b"\x00"),
        lambda: device.erase(0x30000, 0x31000),
    ):
        with pytest.raises(DeviceProtected, match="APPROTECT"):
            action()
    device.mass_erase()
    assert device.faults.protected is False
    assert device.read_memory(0x30000, 4) == b"\xff" * 4


def test_electron_protection_is_named_rdp() -> None:
    device = VirtualDevice(
        make_identity(get_sku("E404"), random.Random(4)), faults=Faults(protected=True)
    )
    with pytest.raises(DeviceProtected, match="RDP"):
        device.read_memory(0x1FFF7A10, 12)


def test_unmapped_addresses_fault_like_a_bus_error() -> None:
    gen3 = VirtualDevice(make_identity(get_sku("BRN404"), random.Random(5)))
    electron = VirtualDevice(make_identity(get_sku("E404"), random.Random(5)))
    with pytest.raises(UnmappedAddress):
        gen3.read_memory(0x20000000, 4)
    with pytest.raises(UnmappedAddress):
        electron.read_memory(0x10000060, 8)
    with pytest.raises(UnmappedAddress):
        gen3.read_memory(0x1FFF7A10, 12)

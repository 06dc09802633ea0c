"""The module list a virtual device reports is parsed from its flash, as on hardware."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from trayline.core.modules import ModuleFunction as F
from trayline.core.modules import parse_module
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.virtual.device import DCT_SETUP_DONE_OFFSET, DeviceMode, VirtualDevice
from trayline.virtual.factory import (
    factory_device_os,
    factory_modules,
    install_module,
    user_part,
)
from trayline.virtual.identity import make_identity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"


def _device(sku: str) -> VirtualDevice:
    return VirtualDevice(make_identity(get_sku(sku), random.Random(sku)))


def _keys(device: VirtualDevice) -> list[tuple[int, int, int, bool]]:
    return [(m.function, m.index, m.version, m.valid) for m in device.modules()]


def test_erased_flash_holds_no_modules_and_boots_to_dfu() -> None:
    device = _device("BRN404")
    assert device.modules() == []
    assert device.device_os() is None
    assert device.boot() is DeviceMode.DFU


def test_real_tracker_modules_written_to_flash_are_found_by_their_prefix() -> None:
    device = _device("T404")
    system = (FIXTURES / "tracker-system-part1@3.1.0-alpha.2.bin").read_bytes()
    tinker = (FIXTURES / "tracker-tinker@5.3.1.bin").read_bytes()
    bootloader = (FIXTURES / "tracker-bootloader@5.6.0.bin").read_bytes()
    for data in (system, tinker, bootloader):
        install_module(device, data)
    assert _keys(device) == [
        (F.SYSTEM_PART, 1, 3101, True),
        (F.USER_PART, 2, 6, True),
        (F.BOOTLOADER, 0, 2400, True),
    ]
    found = {m.function: m for m in device.modules()}
    assert found[F.USER_PART].sha256 == parse_module(tinker).sha256
    assert found[F.SYSTEM_PART].size == len(system)
    assert device.device_os() == SemVer.parse("3.1.0-alpha.2")


def test_the_softdevice_is_reported_from_its_info_struct_because_its_prefix_is_dropped() -> None:
    device = _device("BRN404")
    softdevice = (FIXTURES / "argon-softdevice-6.1.1.bin").read_bytes()
    install_module(device, softdevice)
    assert device.flash.read(0x1000, 16) == softdevice[24:40]
    radio = device.modules()[0]
    assert (radio.function, radio.version, radio.address) == (F.RADIO_STACK, 182, 0x1000)


def test_a_module_cut_short_by_a_bad_write_shows_up_invalid() -> None:
    device = _device("T404")
    tinker = (FIXTURES / "tracker-tinker@5.3.1.bin").read_bytes()
    half = tinker[: len(tinker) // 2]
    device.erase(0xB4000, 0xB4000 + len(tinker))
    device.write(0xB4000, half)
    (user,) = device.modules()
    assert user.function == F.USER_PART and not user.valid
    assert device.user_part() is None


def test_a_single_flipped_bit_fails_the_crc() -> None:
    device = _device("T404")
    tinker = (FIXTURES / "tracker-tinker@5.3.1.bin").read_bytes()
    install_module(device, tinker)
    device.flash.flip_bit(0xB4000 + 1000, 3)
    assert [m.valid for m in device.modules()] == [False]


def test_writing_over_an_unerased_module_corrupts_it_as_nor_flash_does() -> None:
    device = _device("T404")
    old = (FIXTURES / "tracker-tinker@5.3.1.bin").read_bytes()
    new = (FIXTURES / "tracker-user-part-extensions.bin").read_bytes()
    install_module(device, old)
    assert device.write(0xB4000, new) > 0
    assert all(not m.valid for m in device.modules())


@pytest.mark.parametrize("sku_name", ["BRN404", "BRN404X", "B524", "T404", "E404", "E404X"])
def test_factory_images_parse_like_real_modules_and_boot(sku_name: str) -> None:
    sku = get_sku(sku_name)
    release = factory_device_os(sku)
    assert release >= sku.min_device_os
    device = _device(sku_name)
    modules = factory_modules(sku.platform_id, release)
    for data in modules:
        module = parse_module(data)
        assert module.crc_ok and module.sha256_ok
        install_module(device, data)
    assert all(m.valid for m in device.modules())
    assert device.unmet_dependencies() == []
    assert device.device_os() == release
    assert device.boot() in (DeviceMode.NORMAL, DeviceMode.LISTENING)


def test_gen3_below_4_boots_listening_until_setup_done() -> None:
    device = _device("BRN404")
    for data in factory_modules(13, SemVer.parse("2.3.1")):
        install_module(device, data)
    assert device.boot() is DeviceMode.LISTENING
    assert device.setup_done is False
    assert device.set_setup_done(True) is True
    assert device.dct[DCT_SETUP_DONE_OFFSET] == 0x01
    assert device.boot() is DeviceMode.NORMAL


def test_device_os_4_ignores_the_flag_and_electron_has_none() -> None:
    gen3 = _device("BRN404X")
    for data in factory_modules(13, SemVer.parse("4.0.1")):
        install_module(gen3, data)
    assert gen3.setup_done is True and gen3.set_setup_done(True) is False
    assert gen3.boot() is DeviceMode.NORMAL
    electron = _device("E404")
    for data in factory_modules(10, SemVer.parse("2.3.1")):
        install_module(electron, data)
    assert electron.set_setup_done(True) is False
    assert electron.dct[DCT_SETUP_DONE_OFFSET] == 0xFF


def test_unmet_dependency_boots_safe_mode() -> None:
    device = _device("BRN404")
    for data in factory_modules(13, SemVer.parse("2.3.1")):
        install_module(device, data)
    # A user part built against 4.0.1 on a 2.3.1 system part: the user part's dependency fails.
    newer = user_part(13, SemVer.parse("4.0.1"))
    install_module(device, newer)
    assert device.unmet_dependencies()
    assert device.boot() is DeviceMode.SAFE


def test_test_firmware_is_recognised_by_its_marker_in_a_valid_user_part() -> None:
    device = _device("BRN404")
    for data in factory_modules(13, SemVer.parse("2.3.1")):
        install_module(device, data)
    assert not device.runs_test_firmware()
    install_module(device, user_part(13, SemVer.parse("2.3.1"), test_firmware=True))
    assert device.runs_test_firmware()
    assert device.boot() is DeviceMode.NORMAL

"""The ``usb`` programmer on virtual devices: a bundle over DFU with verify, NCP, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from usbkit import MakeBus

from trayline.core.modules import ModuleFunction, parse_module
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.firmware.bundle import read_placements
from trayline.firmware.checks import flash_order
from trayline.programmers.base import (
    Capability,
    ProbeNotFound,
    Programmer,
    ProgrammerError,
    SupportsSetupDone,
    ToolFailed,
    VerifyFailed,
)
from trayline.programmers.registry import get_backend, open_programmer
from trayline.programmers.usb import UsbProgrammer, open_usb_programmer
from trayline.virtual.device import DCT_SETUP_DONE_OFFSET, TESTFW_MARKER
from trayline.virtual.factory import factory_modules, user_part
from trayline.virtual.modulebuild import ModuleSpec, build_module
from trayline.virtual.tray import FactoryOptions, Tray


def _bundle(tmp_path: Path, platform: int, release: SemVer) -> list[tuple[int, bytes, int]]:
    """Device OS ``release`` plus test firmware, as (address, image, function) in flash order."""
    modules = [m for m in factory_modules(platform, release) if parse_module(m).function != 5]
    modules.append(user_part(platform, release, test_firmware=True))
    files = []
    for i, data in enumerate(modules):
        path = tmp_path / f"m{i}.bin"
        path.write_bytes(data)
        files.append(path)
    ordered = flash_order(read_placements(files))
    return [(p.address, p.image(), int(p.module.function)) for p in ordered]


def test_protocol_and_registry(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    prog = open_usb_programmer(device.device_id, slot="slot 1", platform_id=13, backend=backend)
    assert isinstance(prog, Programmer) and isinstance(prog, SupportsSetupDone)
    assert {Capability.SETUP_DONE, Capability.NCP_UPDATE} <= prog.capabilities
    assert get_backend("usb").capabilities == UsbProgrammer.capabilities
    assert get_backend("dfu-util").name == "dfu-util"
    assert prog.read_device_id() == device.device_id
    prog.close()


def test_flash_a_bundle_over_dfu_and_control_requests_with_verify(
    make_bus: MakeBus, tmp_path: Path
) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    plan = _bundle(tmp_path, 13, SemVer(4, 2, 0))
    with open_usb_programmer(
        device.device_id, slot="slot 2", platform_id=13, backend=backend
    ) as prog:
        results = [prog.write_module(address, image, verify=True) for address, image, _ in plan]
        assert all(r.verified for r in results)
        hows = {f: r.detail for (_, _, f), r in zip(plan, results, strict=True)}
        assert hows[ModuleFunction.BOOTLOADER] == "control requests 250/253/251"
        assert hows[ModuleFunction.SYSTEM_PART] == hows[ModuleFunction.USER_PART] == "DfuSe alt 0"
        prog.reset()
        found = {(m.function, m.index): m for m in prog.read_modules()}
    assert found[(4, 1)].version == 4200 and found[(4, 1)].valid
    assert found[(4, 1)].address == 0x30000 and found[(2, 0)].address == 0xF4000
    assert found[(2, 0)].version == 1200
    assert found[(5, 2)].sha256 is not None and found[(5, 2)].address == 0xB4000
    assert device.runs_test_firmware() and device.mode == "normal"
    user = next(image for _, image, f in plan if f == ModuleFunction.USER_PART)
    assert TESTFW_MARKER in user and device.read_memory(0xB4000, len(user)) == user


def test_a_flipped_bit_fails_verification(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    device.faults.flip_bit_on_write = 1
    image = user_part(13, SemVer(2, 3, 1), test_firmware=True)
    with (
        open_usb_programmer(
            device.device_id, slot="slot 3", platform_id=13, backend=backend
        ) as prog,
        pytest.raises(VerifyFailed, match="slot 3"),
    ):
        prog.write_module(0xD4000, image)


def test_dfu_refuses_read_only_region_naming_the_slot(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with (
        open_usb_programmer(
            device.device_id, slot="slot 4", platform_id=13, backend=backend
        ) as prog,
        pytest.raises(ProgrammerError, match=r"slot 4: .*read-only"),
    ):
        prog.write_module(0xF8000, b"\x00" * 64)


def test_setup_done_through_the_programmer(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with open_usb_programmer(device.device_id, slot="s", platform_id=13, backend=backend) as prog:
        assert prog.get_setup_done() is False
        assert prog.set_setup_done() is True
        assert prog.get_setup_done() is True
    assert device.dct[DCT_SETUP_DONE_OFFSET] == 1


def _ncp(version: int) -> bytes:
    return build_module(ModuleSpec(platform=26, function=7, index=0, version=version, start=0,
                                   body=20_000))  # fmt: skip


def test_ncp_update_on_a_virtual_tracker(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("ONE404", device_os="4.2.0")
    device.state.ncp_version = 3
    with open_usb_programmer(
        device.device_id, slot="slot 5", platform_id=26, backend=backend
    ) as prog:
        result = prog.update_ncp(_ncp(7))
        assert result.verified and result.detail == "control requests 250/253/251"
        ncp = [m for m in prog.read_modules() if m.function == ModuleFunction.NCP_FIRMWARE]
    assert [m.version for m in ncp] == [7]
    assert device.state.ncp_version == 7


def test_ncp_update_refused_from_device_os_5_6(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("ONE404", device_os="5.8.0")
    with (
        open_usb_programmer(
            device.device_id, slot="slot 6", platform_id=26, backend=backend
        ) as prog,
        pytest.raises(ToolFailed, match=r"slot 6: .*NOT_SUPPORTED"),
    ):
        prog.update_ncp(_ncp(9))
    assert device.state.ncp_version == 7


def test_a_module_for_another_platform_is_refused_by_the_device(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    wrong = build_module(ModuleSpec(platform=26, function=2, index=0, version=1200, start=0xF4000,
                                    prefix_offset=0x200))  # fmt: skip
    prog = open_usb_programmer(device.device_id, slot="s", platform_id=13, backend=backend)
    with prog, pytest.raises(ToolFailed, match="BAD_DATA"):
        prog.write_module(0xF4000, wrong)


def test_unknown_device_is_probe_not_found(make_bus: MakeBus) -> None:
    backend, _ = make_bus("BRN404", device_os="2.3.1")
    with pytest.raises(ProbeNotFound, match="slot 9"):
        open_usb_programmer(
            "e00fce680000000000000000", slot="slot 9", platform_id=13, backend=backend
        )


def test_several_devices_flashed_from_threads(make_bus: MakeBus) -> None:
    backend, devices = make_bus("BRN404", count=4, device_os="2.3.1")
    image = user_part(13, SemVer(2, 3, 1), test_firmware=True)
    errors: list[BaseException] = []

    def flash(device_id: str) -> None:
        try:
            with open_usb_programmer(
                device_id, slot=device_id, platform_id=13, backend=backend
            ) as p:
                p.write_module(0xD4000, image)
                p.reset()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=flash, args=(d.device_id,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(d.runs_test_firmware() for d in devices)


def test_open_through_the_registry_with_a_tray_folder(tmp_path: Path) -> None:
    tray = Tray.create(tmp_path / "t", get_sku("BRN404"), 1, seed=5,
                       options=FactoryOptions(device_os="2.3.1"))  # fmt: skip
    [device_id] = tray.device_ids()
    options = {"tray": str(tmp_path / "t"), "time_scale": "0"}
    with open_programmer("usb", device_id, slot="slot 1", platform_id=13, options=options) as prog:
        assert prog.read_device_id() == device_id
        assert isinstance(prog, UsbProgrammer) and prog.set_setup_done() is True
    assert tray.load(device_id).dct[DCT_SETUP_DONE_OFFSET] == 1


def test_a_device_of_another_platform_than_the_slot_expects_is_refused(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with pytest.raises(
        ProgrammerError, match=r"slot 7: .*platform 13 \(boron\), the slot expects 26"
    ):
        open_usb_programmer(device.device_id, slot="slot 7", platform_id=26, backend=backend)


@pytest.mark.parametrize("backend", ["usb", "dfu-util"])
def test_a_platform_without_usb_ids_is_a_configuration_error(backend: str) -> None:
    from trayline.programmers.registry import BadBackendOption

    with pytest.raises(BadBackendOption, match=r"slot 8: .*no USB IDs for platform 32"):
        open_programmer(backend, "e00fce68aabbccddeeff0011", slot="slot 8", platform_id=32)

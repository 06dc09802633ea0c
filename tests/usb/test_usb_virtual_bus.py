"""End to end through pyusb: trayline's USB code drives virtual devices on its own backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import usb.core
from usbkit import MakeBus

from trayline.core.ids import SerialNumber
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.usb.device import ParticleDevice, SerialMismatch
from trayline.usb.dfuse import DfuSeDevice, ReadOnlyRegion
from trayline.usb.discovery import find_device, list_devices, wait_for_device
from trayline.usb.messages import DeviceMode, RequestType, encode_bool
from trayline.usb.results import DeviceGone, NotSupported
from trayline.usb.vidpid import UsbMode
from trayline.usb.virtual.backend import VirtualBackend
from trayline.virtual.device import DCT_SETUP_DONE_OFFSET
from trayline.virtual.factory import user_part
from trayline.virtual.tray import FactoryOptions, Tray


def test_devices_enumerate_with_particle_vid_pid_and_id_from_serial(make_bus: MakeBus) -> None:
    backend, devices = make_bus("BRN404", count=3, device_os="2.3.1")
    found = list_devices(backend)
    assert sorted(d.device_id or "" for d in found) == sorted(d.device_id for d in devices)
    assert {(d.vid, d.pid, d.platform, d.mode) for d in found} == {
        (0x2B04, 0xC00D, "boron", UsbMode.NORMAL)
    }
    raw = list(usb.core.find(find_all=True, backend=backend, idVendor=0x2B04, idProduct=0xC00D))
    assert len(raw) == 3


def test_identify_and_serial_cross_check(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        assert dev.get_device_id() == device.device_id
        assert dev.get_system_version() == "2.3.1"
        scanned = SerialNumber.parse(device.identity.serial_number.lower())
        assert dev.check_serial(scanned) == device.identity.serial_number
        with pytest.raises(SerialMismatch, match=rf"{device.device_id}: .* on the sticker"):
            dev.check_serial(SerialNumber.parse("P028ZZZZZZZZZZZ"))


def test_setup_done_on_boron_2x_sets_the_flag_and_the_device_no_longer_boots_listening(
    make_bus: MakeBus,
) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    assert device.mode == "listening"  # fresh Gen 3 < 4.0: setup not done
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        assert dev.get_device_mode() is DeviceMode.LISTENING
        assert dev.is_setup_done() is False
        assert dev.set_setup_done(True) is True
        assert device.dct[DCT_SETUP_DONE_OFFSET] == 0x01
        assert dev.is_setup_done() is True
        assert dev.get_device_mode() is DeviceMode.NORMAL  # 71 followed 73
        dev.reset()
        assert dev.get_device_mode() is DeviceMode.NORMAL
    assert device.mode == "normal"


def test_setup_done_not_set_boots_back_into_listening(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        dev.stop_listening()
        assert dev.get_device_mode() is DeviceMode.NORMAL
        dev.reset()
        assert dev.get_device_mode() is DeviceMode.LISTENING


def test_setup_done_on_device_os_4_is_not_needed(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404X", device_os="4.2.0")
    before = bytes(device.dct)
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        assert dev.set_setup_done(True) is False
        assert dev.is_setup_done() is True
        with pytest.raises(NotSupported):  # the raw device behaviour of spec §2.7
            dev.service.request(RequestType.SET_DEVICE_SETUP_DONE, encode_bool(False))
        dev.service.request(RequestType.SET_DEVICE_SETUP_DONE, encode_bool(True))
    assert bytes(device.dct) == before


def test_electron_has_no_setup_done_flag(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("ELC404", device_os="2.3.1")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        assert dev.set_setup_done(True) is False


@pytest.mark.parametrize(("release", "imei"), [("2.3.1", False), ("5.8.0", True)])
def test_iccid_and_imei_from_request_554(make_bus: MakeBus, release: str, imei: bool) -> None:
    backend, [device] = make_bus("BRN404X" if release != "2.3.1" else "BRN404", device_os=release)
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        reply = dev.get_iccid()
    assert reply.iccid == device.identity.iccid
    assert reply.imei == (device.identity.imei if imei else "")


def test_module_info_lists_what_is_in_flash(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("ONE404", device_os="4.2.0")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        modules = {(m.type, m.index): m for m in dev.get_module_info()}
    assert modules[(4, 1)].version == 4200 and modules[(4, 1)].valid
    assert (2, 0) in modules and (5, 2) in modules
    assert modules[(7, 0)].version == device.state.ncp_version


def test_reset_detaches_then_re_enumerates_and_old_handles_are_gone(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    dev = ParticleDevice.open(device.device_id, backend=backend)
    old_pipe = dev.pipe
    address = find_device(device.device_id, backend).address
    dev.service.request(RequestType.RESET)
    with pytest.raises(DeviceGone):
        old_pipe.raw_in(RequestType.GET_SYSTEM_VERSION)
    again = wait_for_device(device.device_id, backend=backend, mode=UsbMode.NORMAL, timeout=5)
    assert again.address != address
    dev.close()


def test_reenumeration_waits_for_the_scaled_delay(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1", scale=0.02)  # 5 s reset -> 0.1 s
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        dev.service.request(RequestType.RESET)
        assert find_device(device.device_id, backend) is None  # still "rebooting"
        wait_for_device(device.device_id, backend=backend, timeout=5)


def test_dfu_mode_has_the_dfu_pid_memory_strings_and_lowercase_serial(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        raw = dev.enter_dfu()
    assert raw.idProduct == 0xD00D
    assert usb.util.get_string(raw, raw.iSerialNumber) == device.device_id.lower()
    dfu = DfuSeDevice(raw, device.device_id)
    assert sorted(dfu.layouts) == [0, 1, 2]
    assert dfu.layouts[0].name == "Internal Flash" and dfu.transfer_size == 4096
    assert [d.mode for d in list_devices(backend)] == [UsbMode.DFU]
    dfu.close()


def test_dfu_write_read_back_refusals_and_leave(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        dfu = DfuSeDevice(dev.enter_dfu(), device.device_id)
    data = bytes((i * 7) & 0xFF for i in range(10_000))
    dfu.write(0, 0xE0000, data)
    assert dfu.read(0, 0xE0000, len(data)) == data
    assert device.read_memory(0xE0000, len(data)) == data
    with pytest.raises(ReadOnlyRegion, match="read-only"):
        dfu.write(0, 0x0, b"\x00" * 16)
    with pytest.raises(ReadOnlyRegion, match="read-only"):
        dfu.write(0, 0xF4000, b"\x00" * 0x6000)  # reaches the bootloader's read-only top
    dfu.write(1, DCT_SETUP_DONE_OFFSET, b"\x01")  # spec §2.7: alt 1 without erase
    assert device.dct[DCT_SETUP_DONE_OFFSET] == 0x01
    dfu.leave()
    back = wait_for_device(device.device_id, backend=backend, mode=UsbMode.NORMAL, timeout=5)
    assert back.idProduct == 0xC00D


def test_device_refuses_what_the_host_would_refuse(make_bus: MakeBus) -> None:
    """Bypassing the host's check: the bootloader itself answers errADDRESS for the MBR."""
    from trayline.usb.dfu_protocol import DfuStatus
    from trayline.usb.dfuse import DfuError

    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        dfu = DfuSeDevice(dev.enter_dfu(), device.device_id)
    dfu.select_alt(0)
    dfu.set_address(0x0)
    dfu._out(1, 2, b"\x00" * 16, "raw download")
    with pytest.raises(DfuError, match=DfuStatus.ERR_ADDRESS.name):
        dfu._wait("raw write")
    assert dfu.get_status().status == DfuStatus.OK  # CLRSTATUS was sent
    dfu.close()


def test_app_custom_reaches_only_test_firmware(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404X", device_os="4.2.0")
    dev = ParticleDevice.open(device.device_id, backend=backend)
    with dev, pytest.raises(NotSupported):
        dev.app_request(b'{"cmd": "ping"}')
    image = user_part(13, SemVer(4, 2, 0), test_firmware=True)
    from trayline.virtual.factory import install_module

    install_module(device, image)
    device.readings["vbat"] = 4.1
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        reply = json.loads(dev.app_request(b'{"cmd": "ping"}'))
    assert reply == {
        "cmd": "ping",
        "device_id": device.device_id,
        "ok": True,
        "readings": {"vbat": 4.1},
    }


def test_never_answers_fault_times_out_as_libusb_would(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    device.faults.never_answers = True
    [info] = list_devices(backend)
    assert info.device_id is None and "serial number unreadable" in info.note
    with pytest.raises(DeviceGone, match=device.device_id):
        ParticleDevice.open(device.device_id, backend=backend, timeout=0.05)


def test_tray_folder_state_is_shared_between_backends(tmp_path: Path) -> None:
    tray = Tray.create(tmp_path / "t", get_sku("BRN404"), 2, seed=3,
                       options=FactoryOptions(device_os="2.3.1"))  # fmt: skip
    first = tray.device_ids()[0]
    backend = VirtualBackend.from_tray(tmp_path / "t")
    with ParticleDevice.open(first, backend=backend) as dev:
        assert dev.set_setup_done(True) is True
    other = VirtualBackend.from_tray(tmp_path / "t")  # another process would do the same
    assert tray.load(first).dct[DCT_SETUP_DONE_OFFSET] == 0x01
    with ParticleDevice.open(first, backend=other) as dev:
        assert dev.is_setup_done() is True


def test_force_reset_is_the_raw_vendor_request_and_works_when_requests_are_stuck(
    make_bus: MakeBus,
) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    gadget = backend.gadget(device.device_id)
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        assert gadget.channel is not None
        for _ in range(4):  # four requests another session left running
            gadget.channel.handle_in(1, 100, 251, 64)
        generation = gadget.generation
        dev.force_reset()
        assert gadget.generation == generation + 1
        assert dev.get_device_id() == device.device_id


def test_device_protection_makes_every_dfu_region_erase_only(make_bus: MakeBus) -> None:
    backend, [device] = make_bus("BRN404", device_os="2.3.1")
    with ParticleDevice.open(device.device_id, backend=backend) as dev:
        raw = dev.enter_dfu()
    device.faults.protected = True
    dfu = DfuSeDevice(raw, device.device_id)
    with pytest.raises(ReadOnlyRegion, match="read-only"):
        dfu.write(0, 0xB4000, b"\x00" * 16)
    with pytest.raises(ReadOnlyRegion, match="not readable"):
        dfu.read(0, 0xB4000, 16)
    dfu.close()


def test_listing_and_opening_never_wait_for_a_device_another_programmer_holds(
    tmp_path: Path,
) -> None:
    """Two backends on one tray (two slots): slot A's open device must not stall slot B."""
    import threading

    tray = Tray.create(tmp_path / "t", get_sku("BRN404"), 2, seed=8,
                       options=FactoryOptions(device_os="2.3.1"))  # fmt: skip
    a_id, b_id = tray.device_ids()
    slot_a = VirtualBackend.from_tray(tmp_path / "t", time_scale=0)
    slot_b = VirtualBackend.from_tray(tmp_path / "t", time_scale=0)
    seen: list[object] = []

    def slot_b_work() -> None:
        seen.append(sorted(d.device_id or "" for d in list_devices(slot_b)))
        with ParticleDevice.open(b_id, backend=slot_b) as dev:
            seen.append(dev.set_setup_done(True))

    with ParticleDevice.open(a_id, backend=slot_a) as dev_a:
        assert dev_a.is_setup_done() is False  # slot A holds device A's lock now
        worker = threading.Thread(target=slot_b_work, daemon=True)
        worker.start()
        worker.join(timeout=60)  # a deadlock detector, not a speed check
        assert not worker.is_alive(), "slot B waited for the device slot A holds"
    assert seen == [sorted([a_id, b_id]), True]
    assert tray.load(b_id).dct[DCT_SETUP_DONE_OFFSET] == 1

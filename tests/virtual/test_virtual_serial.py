"""The virtual devices' serial ports, over real ptys with pyserial: exact bytes, test firmware."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import serial
from traykit import MakeTray, Served

from trayline.console import ListeningConsole, NoAnswer, TestFirmwareClient
from trayline.core.versions import SemVer
from trayline.virtual.device import DCT_SETUP_DONE_OFFSET, DeviceMode, Faults
from trayline.virtual.factory import install_module, user_part
from trayline.virtual.identity import mac_address
from trayline.virtual.tray import Tray

Serve = Callable[[Tray], Served]


def _ask(path: str, command: bytes, *, wait_for: bytes = b"\r\n", timeout: float = 5.0) -> bytes:
    with serial.Serial(path, 9600, timeout=0.05) as port:
        port.write(command)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data += port.read(4096)
            if data.endswith(wait_for):
                time.sleep(0.1)
                return data + port.read(4096)
        return data


def test_listening_console_exact_bytes(make_tray: MakeTray, serve: Serve) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    ident = tray.record(device_id).identity
    path = serve(tray).paths[device_id]
    assert (
        _ask(path, b"i", wait_for=b"Cell Radio Version: L0.0.00.00.05.12\r\n")
        == (
            f"Device ID: {device_id}\r\n"
            f"Device Secret: {ident.mobile_secret}\r\n"
            f"Serial Number: {ident.serial_number}\r\n"
            f"IMEI: {ident.imei}\r\n"
            f"ICCID: {ident.iccid}\r\n"
            f"Cell Radio Version: L0.0.00.00.05.12\r\n"
        ).encode()
    )
    assert _ask(path, b"v", wait_for=b"\n\r\n") == b"system firmware version: 2.3.1\n\r\n"
    assert (
        _ask(path, b"m") == f"Your device MAC address is\r\n{mac_address(device_id)}\r\n".encode()
    )
    assert _ask(path, b"c") == b"Device claimed: no\r\n"
    modules = _ask(path, b"s")
    assert modules.endswith(b"}\r\n") and modules.count(b"\r\n") == 1
    obj = json.loads(modules)
    assert obj["p"] == 13 and obj["imei"] == ident.imei
    assert [(m["f"], m["n"], m["v"]) for m in obj["m"]] == [
        ("a", "0", 202),
        ("s", "1", 2302),
        ("u", "1", 6),
        ("b", "0", 1006),
    ]
    user = obj["m"][2]
    assert user["vv"] == user["vc"] == 30 and len(user["u"]) == 64
    assert obj["m"][1]["d"] == [{"f": "b", "n": "0", "v": 1006}, {"f": "a", "n": "0", "v": 202}]


def test_no_echo_and_no_newline_translation_on_the_pty(make_tray: MakeTray, serve: Serve) -> None:
    tray = make_tray("BRN404", count=1)
    path = serve(tray).paths[tray.device_ids()[0]]
    answer = _ask(path, b"v", wait_for=b"\n\r\n")
    assert not answer.startswith(b"v") and b"\r\r" not in answer and answer.count(b"\n") == 2


def test_x_leaves_listening_mode_and_the_console_goes_quiet(
    make_tray: MakeTray, serve: Serve
) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    path = serve(tray).paths[device_id]
    assert _ask(path, b"x", timeout=0.5) == b""
    assert tray.load(device_id).mode is DeviceMode.NORMAL
    assert _ask(path, b"i", timeout=0.5) == b""


def test_console_client_reads_a_virtual_device_like_a_real_one(
    make_tray: MakeTray, serve: Serve
) -> None:
    tray = make_tray("E404", count=1, mode=DeviceMode.LISTENING)
    device_id = tray.device_ids()[0]
    path = serve(tray).paths[device_id]
    with ListeningConsole(path) as console:
        ident = console.identify()
        assert ident.device_id == device_id
        assert ident.serial_number == tray.record(device_id).identity.serial_number
        assert ident.device_secret is None  # Gen 2: no mobile secret
        assert console.version() == "2.3.1"
        assert console.modules()["p"] == 10
        assert console.claimed() is False


def test_28800_baud_puts_a_device_os_5_unit_in_listening_mode(
    make_tray: MakeTray, serve: Serve
) -> None:
    tray = make_tray("E404", count=1)
    device_id = tray.device_ids()[0]
    assert tray.load(device_id).mode is DeviceMode.NORMAL
    path = serve(tray).paths[device_id]
    with ListeningConsole(path, timeout=5) as console:
        console.enter_listening_mode(settle=0.5)
        assert tray.load(device_id).mode is DeviceMode.LISTENING
        assert console.identify().device_id == device_id


def test_never_answers_sends_nothing(make_tray: MakeTray, serve: Serve) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(never_answers=True))
    path = serve(tray).paths[device_id]
    with ListeningConsole(path, timeout=0.6) as console, pytest.raises(NoAnswer, match=path):
        console.identify()


def test_slow_console_delays_each_line(make_tray: MakeTray, serve: Serve) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(slow_console=0.3))
    path = serve(tray).paths[device_id]
    started = time.monotonic()
    answer = _ask(path, b"m", wait_for=f"{mac_address(device_id)}\r\n".encode())
    assert answer.endswith(f"{mac_address(device_id)}\r\n".encode())
    assert time.monotonic() - started >= 0.6  # two lines, 0.3 s each (a lower bound only)


def _testfw_tray(make_tray: MakeTray) -> tuple[Tray, str]:
    tray = make_tray("BRN404", count=2)
    device_id = tray.device_ids()[0]
    with tray.session(device_id) as device:
        install_module(device, user_part(13, SemVer.parse("2.3.1"), test_firmware=True))
        device.boot()
    tray.update_record(
        device_id,
        readings={
            "vbat": {"mean": 3.9, "sd": 0.02, "unit": "V"},
            "temp": 24.5,
            "radio.rssi": -70,
            "radio.band": "B13",
        },
    )
    return tray, device_id


def test_test_firmware_protocol_over_a_pty(make_tray: MakeTray, serve: Serve) -> None:
    tray, device_id = _testfw_tray(make_tray)
    path = serve(tray).paths[device_id]
    with TestFirmwareClient(path, timeout=5) as client:
        hello = client.hello()
        assert hello == {
            "hello": "trayline-testfw",
            "protocol": 1,
            "device_id": device_id,
            "device_os": "2.3.1",
        }
        first = client.measure(["vbat", "temp", "nope"])
        again = client.measure(["vbat"])
        assert first[0] == again[0]  # seeded per device and name: a rerun reproduces
        vbat = first[0]
        assert isinstance(vbat, dict) and vbat["unit"] == "V" and 3.8 < vbat["value"] < 4.0
        assert first[1:] == [
            {"measure": "temp", "value": 24.5, "unit": ""},
            {"measure": "nope", "error": "unknown measurement"},
            {"done": True},
        ]
        radio = client.run("radio", {"band": 13})
        assert [r for r in radio if isinstance(r, dict) and "measure" in r] == [
            {"measure": "rssi", "value": -70, "unit": ""},
            {"measure": "band", "value": "B13", "unit": ""},
        ]
        assert radio[-1] == {"done": True}
        assert client.run("gps")[-1] == {"done": False, "error": "unknown test 'gps'"}


def test_test_firmware_refuses_malformed_requests(make_tray: MakeTray, serve: Serve) -> None:
    tray, device_id = _testfw_tray(make_tray)
    path = serve(tray).paths[device_id]
    with serial.Serial(path, 115200, timeout=2) as port:
        for request, reason in (
            (b"hello\n", b"not a JSON object"),
            (b'{"cmd": "measure", "names": "vbat"}\n', b'\\"names\\" must be a list'),
            (b'{"cmd": "fly"}\n', b"unknown cmd"),
            (b"[1]\n", b"not a JSON object"),
        ):
            port.write(request)
            line = port.readline()
            assert line.startswith(b'{"error": "bad request: ') and reason in line


def test_setup_done_and_reset_change_the_device(make_tray: MakeTray, serve: Serve) -> None:
    tray, device_id = _testfw_tray(make_tray)
    path = serve(tray).paths[device_id]
    assert tray.load(device_id).dct[DCT_SETUP_DONE_OFFSET] == 0xFF
    with TestFirmwareClient(path, timeout=5) as client:
        assert client.setup_done() == {"ok": True}
        assert tray.load(device_id).dct[DCT_SETUP_DONE_OFFSET] == 0x01
        boots = tray.load(device_id).state.boots
        assert client.reset() == {"ok": True}
        assert tray.load(device_id).state.boots == boots + 1
        assert client.hello()["device_id"] == device_id  # same port after the reboot


def test_production_firmware_does_not_speak_the_protocol(make_tray: MakeTray, serve: Serve) -> None:
    tray = make_tray("BRN404X", count=1)  # Device OS 4.0.1 with Tinker: normal mode, no test fw
    device_id = tray.device_ids()[0]
    path = serve(tray).paths[device_id]
    with TestFirmwareClient(path, timeout=0.5) as client, pytest.raises(NoAnswer, match="hello"):
        client.hello()


def test_what_one_process_flashes_the_port_says_next(make_tray: MakeTray, serve: Serve) -> None:
    tray = make_tray("BRN404X", count=1)
    device_id = tray.device_ids()[0]
    path = serve(tray).paths[device_id]
    other = Tray(tray.folder)  # as another process would open it
    with other.session(device_id) as device:
        install_module(device, user_part(13, SemVer.parse("4.0.1"), test_firmware=True))
        device.boot()
    with TestFirmwareClient(path, timeout=5) as client:
        assert client.hello()["device_os"] == "4.0.1"

"""Listening-mode console parsers, port discovery and the quiet reader, without a device."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import serial

from trayline.console import NoAnswer, NotParticle, PortBusy, PortNotFound, find_ports
from trayline.console.link import open_port, read_until_quiet
from trayline.console.listening import parse_identify, parse_modules, parse_version

ID = "e00fce68ffe1ac37b2c1d3a4"
KEY_VALUE = (
    f"Device ID: {ID}\r\n"
    "Device Secret: ABCDEF123456789\r\n"
    "Serial Number: P028AB1234567XY\r\n"
    "IMEI: 352753090123456\r\n"
    "ICCID: 89014103211118510720\r\n"
    "Cell Radio Version: L0.0.00.00.05.12\r\n"
).encode()


def test_identify_key_value_form() -> None:
    ident = parse_identify(KEY_VALUE, "/dev/ttyACM0")
    assert ident.device_id == ID
    assert ident.serial_number == "P028AB1234567XY"
    assert ident.imei == "352753090123456" and ident.iccid == "89014103211118510720"
    assert ident.cell_radio_version == "L0.0.00.00.05.12"
    assert ident.device_secret == "ABCDEF123456789"
    assert "ABCDEF123456789" not in repr(ident)


def test_identify_short_form_and_uppercase_ids() -> None:
    ident = parse_identify(f"Your device id is {ID.upper()}\r\n".encode())
    assert ident.device_id == ID and ident.serial_number is None
    assert parse_identify(f"Your core id is {ID}\r\n".encode()).device_id == ID


@pytest.mark.parametrize(
    "answer",
    [b"", b"hello\r\n", b"Device ID: not-an-id\r\n", b"\x00\xff\xfe", b"OK\r\nAT\r\n"],
)
def test_identify_refuses_what_a_particle_device_does_not_say(answer: bytes) -> None:
    with pytest.raises(NotParticle, match=r"^/dev/ttyUSB3: "):
        parse_identify(answer, "/dev/ttyUSB3")


def test_version_with_device_os_line_ending() -> None:
    assert parse_version(b"system firmware version: 2.3.1\n\r\n") == "2.3.1"
    assert parse_version(b"system firmware version: 5.6.0-rc.1\n\r\n") == "5.6.0-rc.1"
    with pytest.raises(NotParticle):
        parse_version(b"1.2.3\r\n")


def test_modules_json() -> None:
    text = (
        b'{"p":13,"imei":"1","m":[{"s":1,"l":"m","vc":30,"vv":30,'
        b'"f":"s","n":"1","v":2302,"d":[]}]}\r\n'
    )
    assert parse_modules(text)["m"][0]["v"] == 2302
    for bad in (b"{", b"[]\r\n", b'{"p": 13}\r\n'):
        with pytest.raises(NotParticle):
            parse_modules(bad)


@dataclass
class _Info:
    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    product: str | None = None
    description: str = ""


def test_find_ports_by_vid_and_virtual_tray(tmp_path: Path) -> None:
    infos = [
        _Info("/dev/ttyACM0", 0x2B04, 0xC00D, ID.upper(), "Boron"),
        _Info("/dev/ttyACM1", 0x0D28, 0x0204, "0700000100"),  # a Particle Debugger: not a device
        _Info("/dev/ttyS0", None, None, None),
        _Info("/dev/ttyACM2", 0x2B04, 0xC00A, "old firmware 3a0024000c47343432313031 x"),
    ]
    (tmp_path / "ports.json").write_text('{"e00fce68aaaaaaaaaaaaaaaa": "/dev/pts/7"}')
    found = find_ports(virtual=tmp_path, comports=lambda: infos)
    assert [(p.path, p.device_id, p.source) for p in found] == [
        ("/dev/ttyACM0", ID, "usb"),
        ("/dev/ttyACM2", "3a0024000c47343432313031", "usb"),
        ("/dev/pts/7", "e00fce68aaaaaaaaaaaaaaaa", "virtual"),
    ]
    assert find_ports(virtual=tmp_path / "not-served", comports=list) == []


def test_open_port_errors_name_the_port(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyACM9")
    with pytest.raises(PortNotFound, match=f"^{missing}: no such port"):
        open_port(missing)
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        first = open_port(path)
        with pytest.raises(PortBusy, match=f"^{path}: port busy"):
            open_port(path)
        first.close()
    finally:
        os.close(master)
        os.close(slave)


def test_quiet_reader_returns_after_250_ms_of_silence_and_times_out_on_none() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        port = open_port(path)
        os.write(master, b"Device ID: x\r\n")
        started = time.monotonic()
        assert read_until_quiet(port, quiet=0.25, timeout=5) == b"Device ID: x\r\n"
        assert time.monotonic() - started >= 0.25
        with pytest.raises(NoAnswer, match=f"^{path}: no answer within 0.3 s"):
            read_until_quiet(port, timeout=0.3)
        os.write(master, b"{")
        with pytest.raises(NoAnswer, match="incomplete answer"):
            read_until_quiet(port, timeout=0.5, complete=lambda d: d.endswith(b"}"))
        port.close()
    finally:
        os.close(master)
        os.close(slave)


def test_no_answer_is_a_timeout_error_for_the_station() -> None:
    assert issubclass(NoAnswer, TimeoutError) and issubclass(NoAnswer, OSError)
    assert issubclass(PortBusy, OSError)
    _ = serial  # pyserial is what the console speaks

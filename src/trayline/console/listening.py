"""The host side of the listening-mode console: identify, version, modules (spec §4).

A device in listening mode (blinking dark blue) answers single characters on
its USB serial port. The parsers here are pure and accept exactly what Device
OS prints — both forms of ``i`` (the key/value lines, or the lone ``Your device
id is …`` of a platform without key/values), the ``\\n\\r\\n`` ending of ``v`` —
and refuse anything else with :class:`~trayline.console.errors.NotParticle`
naming the port. :class:`ListeningConsole` sends the commands over pyserial,
the same code for ``/dev/ttyACM0`` and a virtual device's ``/dev/pts/N``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import serial

from trayline.console.errors import NotParticle
from trayline.console.link import (
    INACTIVITY,
    OVERALL_TIMEOUT,
    SerialFactory,
    open_port,
    read_until_quiet,
)
from trayline.core.ids import DeviceId, InvalidIdentifier

__all__ = [
    "LISTENING_BAUD",
    "ConsoleIdentity",
    "ListeningConsole",
    "parse_identify",
    "parse_modules",
    "parse_version",
]

LISTENING_BAUD = 28800
"""Setting this line coding puts Device OS < 6.0 in listening mode (spec §3.7)."""

_SHORT_FORM = re.compile(r"Your (?:core|device) id is\s+(\w+)")
_VERSION = re.compile(r"system firmware version:\s*(\S+)")
_KEYS = {
    "Device ID": "device_id",
    "Device Secret": "device_secret",
    "Serial Number": "serial_number",
    "IMEI": "imei",
    "ICCID": "iccid",
    "Cell Radio Version": "cell_radio_version",
}


@dataclass(frozen=True, slots=True)
class ConsoleIdentity:
    """What ``i`` says. ``device_secret`` (the mobile secret) is kept out of ``repr``."""

    device_id: DeviceId
    serial_number: str | None = None
    imei: str | None = None
    iccid: str | None = None
    cell_radio_version: str | None = None
    device_secret: str | None = field(default=None, repr=False)


def _device_id(text: str, port: str) -> DeviceId:
    try:
        return DeviceId.parse(text)
    except InvalidIdentifier as exc:
        raise NotParticle(port, f"answered `i` with a bad device ID: {exc}") from None


def parse_identify(data: bytes, port: str = "port") -> ConsoleIdentity:
    """Both output forms of ``i``; :class:`NotParticle` for anything else."""
    text = data.decode("utf-8", "replace")
    found: dict[str, str] = {}
    for raw in text.splitlines():
        key, sep, value = raw.partition(":")
        if sep and key.strip() in _KEYS and value.strip():
            found[_KEYS[key.strip()]] = value.strip()
    if "device_id" in found:
        return ConsoleIdentity(
            device_id=_device_id(found["device_id"], port),
            serial_number=found.get("serial_number"),
            imei=found.get("imei"),
            iccid=found.get("iccid"),
            cell_radio_version=found.get("cell_radio_version"),
            device_secret=found.get("device_secret"),
        )
    short = _SHORT_FORM.search(text)
    if short:
        return ConsoleIdentity(device_id=_device_id(short.group(1), port))
    raise NotParticle(
        port,
        "no device ID in the answer to `i`: not a Particle device in listening mode "
        "(blinking dark blue)?",
    )


def parse_version(data: bytes, port: str = "port") -> str:
    """``system firmware version: X.Y.Z`` → ``"X.Y.Z"``."""
    match = _VERSION.search(data.decode("utf-8", "replace"))
    if not match:
        raise NotParticle(port, "no 'system firmware version' in the answer to `v`")
    return match.group(1)


def parse_modules(data: bytes, port: str = "port") -> dict[str, Any]:
    """The JSON object ``s`` prints: ``{"p": platform, …, "m": [modules]}``."""
    text = data.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        raise NotParticle(port, "the answer to `s` is not a JSON object") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("m"), list) or "p" not in obj:
        raise NotParticle(port, 'the answer to `s` has no "p" and "m" fields')
    return obj


def _json_complete(data: bytes) -> bool:
    if not data.rstrip().endswith(b"}"):
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


class ListeningConsole:
    """An open serial port to a device in listening mode. Use as a context manager."""

    def __init__(
        self,
        path: str,
        *,
        timeout: float = OVERALL_TIMEOUT,
        quiet: float = INACTIVITY,
        factory: SerialFactory = serial.Serial,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.quiet = quiet
        self._factory = factory
        self._port: serial.Serial | None = None

    def __enter__(self) -> ListeningConsole:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._port is None:
            self._port = open_port(self.path, factory=self._factory)

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def command(self, char: str, *, complete: Any = None) -> bytes:
        """Send one command character and return the whole answer (250 ms quiet rule)."""
        self.open()
        assert self._port is not None
        self._port.reset_input_buffer()
        self._port.write(char.encode("ascii"))
        self._port.flush()
        return read_until_quiet(
            self._port, quiet=self.quiet, timeout=self.timeout, complete=complete
        )

    def identify(self) -> ConsoleIdentity:
        return parse_identify(self.command("i"), self.path)

    def version(self) -> str:
        return parse_version(self.command("v", complete=lambda d: b"\n\r\n" in d), self.path)

    def modules(self) -> dict[str, Any]:
        return parse_modules(self.command("s", complete=_json_complete), self.path)

    def claimed(self) -> bool:
        text = self.command("c").decode("utf-8", "replace")
        if "Device claimed:" not in text:
            raise NotParticle(self.path, "no 'Device claimed' in the answer to `c`")
        return "yes" in text.split("Device claimed:", 1)[1]

    def enter_listening_mode(self, *, settle: float = 1.0) -> None:
        """Ask a Device OS < 6.0 unit to enter listening mode by setting 28800 baud (§3.7)."""
        self.open()
        assert self._port is not None
        original = self._port.baudrate
        self._port.baudrate = LISTENING_BAUD
        time.sleep(settle)
        self._port.baudrate = original

    def leave_listening_mode(self) -> None:
        """``x``: the device leaves listening mode (prints nothing)."""
        self.open()
        assert self._port is not None
        self._port.write(b"x")
        self._port.flush()

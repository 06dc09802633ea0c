"""The device side of the test-firmware protocol (team/TESTFW-PROTOCOL.md).

A virtual device whose flash holds a valid user part carrying
``trayline-testfw`` answers JSON lines on its serial port, as the example test
firmware does on a real unit. What it measures comes from ``devices.json``
``readings``: a plain value is returned as is; ``{"mean": m, "sd": s, "unit":
u}`` is a normal draw seeded by device ID and name, so a rerun gives the same
value (a station retest reproduces, as a stable physical unit would).

Pure: :func:`handle_line` takes a device snapshot and one received line and
returns the reply lines plus what the port must do afterwards (set the
setup-done flag, reset). The port applies those through the tray, because
they change the device.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from trayline.virtual.device import VirtualDevice

__all__ = ["PROTOCOL", "TestFirmwareReply", "handle_line", "reading_value"]

PROTOCOL = 1


@dataclass(slots=True)
class TestFirmwareReply:
    """Lines to send (JSON objects) and the side effect the port applies after them."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    action: str | None = None
    """``"setup_done"`` or ``"reset"``; ``None`` for a pure answer."""

    def encoded(self) -> list[bytes]:
        return [json.dumps(line).encode() + b"\n" for line in self.lines]


def reading_value(device_id: str, name: str, spec: object) -> tuple[object, str]:
    """``(value, unit)`` of one configured reading (number, text, bool or a normal draw)."""
    if isinstance(spec, dict):
        rng = random.Random(f"{device_id}:{name}")
        value = rng.gauss(float(spec["mean"]), float(spec["sd"]))
        return round(value, 4), str(spec.get("unit", ""))
    return spec, ""


def _measure(device: VirtualDevice, names: list[str], reply: TestFirmwareReply) -> None:
    for name in names:
        if name in device.readings:
            value, unit = reading_value(device.device_id, name, device.readings[name])
            reply.lines.append({"measure": name, "value": value, "unit": unit})
        else:
            reply.lines.append({"measure": name, "error": "unknown measurement"})


def _run(device: VirtualDevice, test: str, reply: TestFirmwareReply) -> None:
    prefix = test + "."
    names = [n for n in device.readings if n.startswith(prefix)]
    if not names:
        reply.lines.append({"done": False, "error": f"unknown test {test!r}"})
        return
    reply.lines.append({"log": f"running {test}"})
    for name in names:
        value, unit = reading_value(device.device_id, name, device.readings[name])
        reply.lines.append({"measure": name[len(prefix) :], "value": value, "unit": unit})
    reply.lines.append({"done": True})


def _bad(why: str) -> TestFirmwareReply:
    return TestFirmwareReply([{"error": f"bad request: {why}"}])


def handle_line(device: VirtualDevice, line: bytes) -> TestFirmwareReply:
    """Answer one host line; blank lines get no answer, malformed ones a ``bad request``."""
    text = line.strip()
    if not text:
        return TestFirmwareReply()
    try:
        request = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return _bad("not a JSON object")
    if not isinstance(request, dict):
        return _bad("not a JSON object")
    command = request.get("cmd")
    reply = TestFirmwareReply()
    if command == "hello":
        release = device.device_os()
        reply.lines.append(
            {
                "hello": "trayline-testfw",
                "protocol": PROTOCOL,
                "device_id": device.device_id,
                "device_os": str(release) if release else "0.0.0",
            }
        )
    elif command == "measure":
        names = request.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return _bad('"names" must be a list of strings')
        _measure(device, names, reply)
        reply.lines.append({"done": True})
    elif command == "run":
        test = request.get("test")
        if not isinstance(test, str) or not test:
            return _bad('"test" must be a non-empty string')
        if "args" in request and not isinstance(request["args"], dict):
            return _bad('"args" must be an object')
        _run(device, test, reply)
    elif command in ("setup_done", "reset"):
        reply.lines.append({"ok": True})
        reply.action = command
    else:
        return _bad(f"unknown cmd {command!r}" if command is not None else 'missing "cmd"')
    return reply

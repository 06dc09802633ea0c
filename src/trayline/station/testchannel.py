"""What the test-plan runner needs of the test firmware, and how it reads the answers.

The wire protocol (docs/test-firmware.md) is JSON lines over the device's USB
serial port. ``trayline.console`` speaks it; the runner sees only
:class:`TestChannel`, so it runs the same against a real port, a virtual device
on a pty, or an in-memory fake in tests.

Contract of a channel:

* each call sends one command and returns the device's answer objects;
* ``measure`` and ``run`` yield every JSON object the device sent for the
  command, up to and including its ``{"done": ...}`` line (a channel may also
  stop just before it); lines that are not JSON objects may be dropped or
  yielded — the runner ignores anything that is not a mapping;
* no complete answer within ``timeout`` seconds → :class:`TimeoutError`;
  the port failing → :class:`OSError` (pyserial's ``SerialException`` is one).

:func:`read_record` classifies one object; it is pure and never raises, because
the device's output is not trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

TESTFW_BANNER = "trayline-testfw"
PROTOCOL_VERSION = 1


class TestChannel(Protocol):
    """The host side of the test-firmware protocol, one device."""

    def hello(self, *, timeout: float) -> Mapping[str, object]: ...

    def measure(self, names: Sequence[str], *, timeout: float) -> Iterable[object]: ...

    def run(self, test: str, args: Mapping[str, object], *, timeout: float) -> Iterable[object]: ...

    def setup_done(self, *, timeout: float) -> Mapping[str, object]: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """``{"measure": NAME, "value": V, "unit": U}`` or ``{"measure": NAME, "error": ...}``."""

    name: str
    value: object
    unit: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Done:
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class Log:
    text: str


@dataclass(frozen=True, slots=True)
class Refused:
    """``{"error": "bad request: ..."}``: the firmware did not understand the command."""

    error: str


Record = Reading | Done | Log | Refused


def read_record(obj: object) -> Record | None:
    """What one answer object means; None for anything to ignore (garbage, unknown shapes)."""
    if not isinstance(obj, Mapping):
        return None
    if "measure" in obj:
        name = obj.get("measure")
        if not isinstance(name, str) or not name:
            return None
        unit = obj.get("unit")
        error = obj.get("error")
        return Reading(
            name=name,
            value=obj.get("value"),
            unit=unit if isinstance(unit, str) else None,
            error=None if error is None else str(error),
        )
    if "done" in obj:
        error = obj.get("error")
        return Done(ok=obj.get("done") is True, error=None if error is None else str(error))
    if "log" in obj:
        return Log(text=str(obj.get("log")))
    if "error" in obj:
        return Refused(error=str(obj.get("error")))
    return None


@dataclass(frozen=True, slots=True)
class HelloInfo:
    device_id: str | None
    device_os: str | None
    protocol: int


def check_hello(answer: object) -> HelloInfo | str:
    """The firmware's identity, or the reason in plain words it is not our test firmware."""
    if not isinstance(answer, Mapping):
        return "the device did not answer hello with a JSON object"
    if answer.get("hello") != TESTFW_BANNER:
        banner = answer.get("hello")
        if "error" in answer and banner is None:
            return f"the device refused hello: {answer.get('error')}"
        return f"not the trayline test firmware (hello: {banner!r})"
    protocol = answer.get("protocol")
    if protocol != PROTOCOL_VERSION or isinstance(protocol, bool):
        return f"test firmware speaks protocol {protocol!r}; this station speaks {PROTOCOL_VERSION}"
    device_id = answer.get("device_id")
    device_os = answer.get("device_os")
    return HelloInfo(
        device_id=device_id.lower() if isinstance(device_id, str) else None,
        device_os=device_os if isinstance(device_os, str) else None,
        protocol=PROTOCOL_VERSION,
    )

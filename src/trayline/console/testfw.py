"""The host side of the test-firmware protocol: JSON lines over the device's serial port.

Protocol: team/TESTFW-PROTOCOL.md (docs/test-firmware.md). The host sends one
JSON object per line; the device answers with JSON objects, one per line, and
may print anything else in between (Device OS logs), which is skipped. Each
command has a *terminal* answer — ``hello`` its ``{"hello": …}``, ``measure``
and ``run`` their ``{"done": …}``, ``setup_done`` and ``reset`` their
``{"ok": …}`` — and a malformed request ``{"error": …}``. No terminal answer
within the timeout is :class:`~trayline.console.errors.NoAnswer` (a
``TimeoutError``); the port failing is an ``OSError`` — the contract the
station's test channel relies on. :class:`TestFirmwareClient` satisfies
``trayline.station.testchannel.TestChannel`` by shape (adapters do not import
services).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import serial

from trayline.console.errors import NoAnswer
from trayline.console.link import SerialFactory, open_port

__all__ = ["DEFAULT_TIMEOUT", "TestFirmwareClient", "parse_answer_line"]

DEFAULT_TIMEOUT = 10.0


def parse_answer_line(line: bytes) -> dict[str, Any] | None:
    """One received line as a JSON object, or ``None`` for logs, blanks and garbage."""
    text = line.strip()
    if not text.startswith(b"{"):
        return None
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _is_error(obj: Mapping[str, Any]) -> bool:
    return "error" in obj and not ({"measure", "done"} & set(obj))


class TestFirmwareClient:
    """A conversation with the test firmware on one port. Use as a context manager."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        path: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        factory: SerialFactory = serial.Serial,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self._factory = factory
        self._port: serial.Serial | None = None
        self._buffer = bytearray()

    def __enter__(self) -> TestFirmwareClient:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._port is None:
            self._port = open_port(self.path, baudrate=115200, factory=self._factory)
            self._buffer.clear()

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    # -- wire ------------------------------------------------------------------------------

    def _send(self, request: Mapping[str, Any]) -> None:
        """Write one request, first dropping anything still unread.

        The protocol is strictly request/answer, so bytes waiting before a
        request are the tail of an earlier answer that timed out (a retried
        step must not read them as its own answer).
        """
        self.open()
        assert self._port is not None
        self._buffer.clear()
        self._port.reset_input_buffer()
        self._port.write(json.dumps(request).encode() + b"\n")
        self._port.flush()

    def _next_object(self, deadline: float, what: str, seconds: float) -> dict[str, Any]:
        """The next JSON object the device sends; non-JSON lines are skipped."""
        assert self._port is not None
        while True:
            while b"\n" in self._buffer:
                line, _, rest = self._buffer.partition(b"\n")
                self._buffer = bytearray(rest)
                obj = parse_answer_line(bytes(line))
                if obj is not None:
                    return obj
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoAnswer(self.path, f"test firmware did not answer {what} in {seconds:g} s")
            self._port.timeout = min(remaining, 0.05)
            chunk = self._port.read(max(1, self._port.in_waiting))
            self._buffer += chunk

    def exchange(
        self,
        request: Mapping[str, Any],
        terminal: Callable[[Mapping[str, Any]], bool],
        *,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """Send ``request``; every object received up to and including the terminal one."""
        self.open()
        seconds = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        what = f"{request.get('cmd')!r}"
        self._send(request)
        answers: list[dict[str, Any]] = []
        while True:
            obj = self._next_object(deadline, what, seconds)
            answers.append(obj)
            if terminal(obj) or _is_error(obj):
                return answers

    # -- commands (the station's TestChannel shape) ---------------------------------------

    def hello(self, *, timeout: float | None = None) -> Mapping[str, object]:
        answers = self.exchange({"cmd": "hello"}, lambda o: "hello" in o, timeout=timeout)
        return answers[-1]

    def measure(self, names: Sequence[str], *, timeout: float | None = None) -> list[object]:
        request = {"cmd": "measure", "names": list(names)}
        return list(self.exchange(request, lambda o: "done" in o, timeout=timeout))

    def run(
        self, test: str, args: Mapping[str, object] | None = None, *, timeout: float | None = None
    ) -> list[object]:
        request = {"cmd": "run", "test": test, "args": dict(args or {})}
        return list(self.exchange(request, lambda o: "done" in o, timeout=timeout))

    def setup_done(self, *, timeout: float | None = None) -> Mapping[str, object]:
        return self.exchange({"cmd": "setup_done"}, lambda o: "ok" in o, timeout=timeout)[-1]

    def reset(self, *, timeout: float | None = None) -> Mapping[str, object]:
        """Reset the device; after ``{"ok": true}`` the port goes away and comes back."""
        answer = self.exchange({"cmd": "reset"}, lambda o: "ok" in o, timeout=timeout)[-1]
        self._buffer.clear()
        return answer

"""An in-memory test firmware: the TestChannel contract without a port.

It answers like docs/test-firmware.md says a device does, from a table of
readings, and can be told to misbehave: stay silent (TimeoutError), interleave
garbage, fail a routine, lose the port.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

DEVICE_ID = "e00fce68a1b2c3d4e5f60718"


@dataclass
class FakeTestFirmware:
    readings: dict[str, object] = field(default_factory=dict)
    """name → value, or (value, unit)."""
    hello_answer: Mapping[str, object] = field(
        default_factory=lambda: {
            "hello": "trayline-testfw",
            "protocol": 1,
            "device_id": DEVICE_ID,
            "device_os": "4.2.0",
        }
    )
    silent: set[str] = field(default_factory=set)
    """Commands that never answer (hello, measure, run, setup_done)."""
    garbage: bool = False
    """Interleave non-JSON lines and unknown objects, as Device OS logs would."""
    failing_tests: dict[str, str] = field(default_factory=dict)
    """run NAME ends with {"done": false, "error": ...}."""
    sequence: dict[str, list[object]] = field(default_factory=dict)
    """name → values returned on successive measures (the last one repeats)."""
    port_gone: bool = False
    stall_after: int | None = None
    """run streams this many readings, then goes silent (TimeoutError)."""
    setup_done_flag: bool = False
    setup_done_answer: Mapping[str, object] = field(default_factory=lambda: {"ok": True})
    calls: list[tuple[str, object]] = field(default_factory=list)

    def _check(self, cmd: str) -> None:
        self.calls.append((cmd, None))
        if self.port_gone:
            raise OSError("[Errno 5] Input/output error: '/dev/ttyACM0'")
        if cmd in self.silent:
            raise TimeoutError

    def _reading(self, name: str, key: str | None = None) -> dict[str, object]:
        values = self.sequence.get(name)
        if values:
            value: object = values.pop(0) if len(values) > 1 else values[0]
        elif (key or name) in self.readings:
            value = self.readings[key or name]
        else:
            return {"measure": name, "error": "unknown measurement"}
        if isinstance(value, tuple):
            return {"measure": name, "value": value[0], "unit": value[1]}
        return {"measure": name, "value": value, "unit": ""}

    def _noise(self) -> Iterator[object]:
        if self.garbage:
            yield "0000012345 [app] INFO: booting"
            yield ["not", "an", "object"]
            yield {"something": "new", "from": "protocol 1.1"}

    def hello(self, *, timeout: float) -> Mapping[str, object]:
        self._check("hello")
        return self.hello_answer

    def measure(self, names: Sequence[str], *, timeout: float) -> Iterator[object]:
        self._check("measure")
        self.calls[-1] = ("measure", list(names))
        for name in names:
            yield from self._noise()
            yield self._reading(name)
        yield {"done": True}

    def run(self, test: str, args: Mapping[str, object], *, timeout: float) -> Iterator[object]:
        self._check("run")
        self.calls[-1] = ("run", (test, dict(args)))
        yield {"log": f"starting {test}"}
        prefix = f"{test}."
        for sent, key in enumerate(k for k in self.readings if k.startswith(prefix)):
            if sent == self.stall_after:
                raise TimeoutError
            yield from self._noise()
            yield self._reading(key[len(prefix) :], key)
        if test in self.failing_tests:
            yield {"done": False, "error": self.failing_tests[test]}
        else:
            yield {"done": True}

    def setup_done(self, *, timeout: float) -> Mapping[str, object]:
        self._check("setup_done")
        self.setup_done_flag = self.setup_done_answer.get("ok") is True
        return self.setup_done_answer

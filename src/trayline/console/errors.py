"""Serial-console failures, each naming the port, so an operator knows which cable to check.

All are :class:`ConsoleError` (exit code 6, a device problem); the subclasses
say what to do: a port that does not exist (:class:`PortNotFound`), one another
program holds (:class:`PortBusy`), a device that stays silent
(:class:`NoAnswer`, also a ``TimeoutError`` so the station's test channel
contract holds), or something that answers but not like a Particle device
(:class:`NotParticle`).
"""

from __future__ import annotations

__all__ = ["ConsoleError", "NoAnswer", "NotParticle", "PortBusy", "PortNotFound"]


class ConsoleError(OSError):
    """A serial-console problem; ``str()`` starts with the port."""

    exit_code = 6

    def __init__(self, port: str, message: str) -> None:
        super().__init__(f"{port}: {message}")
        self.port = port

    def __str__(self) -> str:
        return str(self.args[0])


class PortNotFound(ConsoleError):
    """The port does not exist (unplugged, wrong name, a virtual tray that is not served)."""


class PortBusy(ConsoleError):
    """Another program has the port open (a serial monitor, another trayline, ModemManager)."""


class NoAnswer(ConsoleError, TimeoutError):
    """Nothing (or nothing complete) came back within the timeout."""


class NotParticle(ConsoleError):
    """Bytes came back, but not what a Particle device in that mode says."""

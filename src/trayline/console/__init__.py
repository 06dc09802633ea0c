"""The serial console client (pyserial): Particle ports, the listening-mode console, test firmware.

* :mod:`~trayline.console.ports` — find Particle ports (USB VID 0x2B04, a virtual tray's ptys);
* :mod:`~trayline.console.link` — open a port, read an answer with the 250 ms quiet rule;
* :mod:`~trayline.console.listening` — ``i``/``v``/``s``/``c`` and their parsers (spec §4);
* :mod:`~trayline.console.testfw` — the test-firmware JSON-lines client (TESTFW-PROTOCOL.md).

Every error is a :class:`~trayline.console.errors.ConsoleError` whose message
starts with the port. The same code reads a real ``/dev/ttyACM0`` and a
virtual device's ``/dev/pts/N``.
"""

from trayline.console.errors import ConsoleError, NoAnswer, NotParticle, PortBusy, PortNotFound
from trayline.console.listening import ConsoleIdentity, ListeningConsole
from trayline.console.ports import ParticlePort, find_ports
from trayline.console.testfw import TestFirmwareClient

__all__ = [
    "ConsoleError",
    "ConsoleIdentity",
    "ListeningConsole",
    "NoAnswer",
    "NotParticle",
    "ParticlePort",
    "PortBusy",
    "PortNotFound",
    "TestFirmwareClient",
    "find_ports",
]

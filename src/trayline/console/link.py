"""Opening a device's serial port and reading answers the way Particle's CLI does.

The listening-mode console has no end-of-answer marker: ``i`` prints four to
six lines, ``s`` one long JSON line, and the device simply stops. Particle's CLI
(``src/cmd/serial.js``) therefore collects bytes until none arrive for 250 ms,
with a 20 s overall timeout; :func:`read_until_quiet` does the same. A device
that never sends a byte fails with :class:`~trayline.console.errors.NoAnswer`
naming the port, never a silent hang.

:func:`open_port` opens with ``exclusive=True`` (an advisory lock on POSIX), so
two trayline processes never interleave commands on one device; a port held by
another program is :class:`~trayline.console.errors.PortBusy`.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable

import serial

from trayline.console.errors import NoAnswer, PortBusy, PortNotFound

__all__ = ["INACTIVITY", "OVERALL_TIMEOUT", "open_port", "read_until_quiet"]

INACTIVITY = 0.25
"""Seconds of silence that end an answer (particle-cli's batch parser)."""
OVERALL_TIMEOUT = 20.0
"""Seconds before a command with no complete answer fails (particle-cli's default)."""

SerialFactory = Callable[..., serial.Serial]


def open_port(
    path: str, *, baudrate: int = 9600, factory: SerialFactory = serial.Serial
) -> serial.Serial:
    """Open ``path`` raw at ``baudrate`` (ignored by USB CDC; 9600 as the CLI), input flushed."""
    try:
        port = factory(path, baudrate=baudrate, timeout=0, exclusive=True)
    except serial.SerialException as exc:
        cause = exc.__context__ if isinstance(exc.__context__, OSError) else None
        code = exc.errno if isinstance(exc.errno, int) else (cause.errno if cause else None)
        text = str(exc)
        if code == errno.ENOENT or "No such file" in text:
            raise PortNotFound(
                path, "no such port (unplugged? is `trayline virtual serve` running?)"
            ) from None
        if (
            code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK)
            or "busy" in text.lower()
            or "lock" in text.lower()
        ):
            raise PortBusy(
                path, "port busy: another program has it open (close serial monitors)"
            ) from None
        if code == errno.EACCES:
            raise PortBusy(
                path,
                "permission denied (add yourself to the dialout group or install the udev rule)",
            ) from None
        raise PortNotFound(path, f"cannot open ({text})") from None
    port.reset_input_buffer()
    return port


def read_until_quiet(
    port: serial.Serial,
    *,
    quiet: float = INACTIVITY,
    timeout: float = OVERALL_TIMEOUT,
    complete: Callable[[bytes], bool] | None = None,
) -> bytes:
    """Bytes until ``quiet`` seconds pass with none, or ``complete(data)`` says the answer is whole.

    Raises :class:`NoAnswer` when nothing arrives within ``timeout``, or when
    ``complete`` is given and the data is still incomplete at ``timeout``.
    """
    data = bytearray()
    started = time.monotonic()
    last = started
    while True:
        now = time.monotonic()
        waiting = port.in_waiting
        if waiting:
            data += port.read(waiting)
            last = time.monotonic()
            if complete is not None and complete(bytes(data)):
                return bytes(data)
            continue
        if data and now - last >= quiet and (complete is None or complete(bytes(data))):
            return bytes(data)
        if now - started >= timeout:
            name = port.port or "port"
            if not data:
                raise NoAnswer(name, f"no answer within {timeout:g} s")
            raise NoAnswer(name, f"incomplete answer within {timeout:g} s ({len(data)} bytes)")
        time.sleep(min(0.01, quiet / 5))

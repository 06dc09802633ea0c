"""A real serial port per virtual device: a pseudo-terminal that speaks like the unit's USB CDC.

Each device gets a pty pair (``os.openpty``); trayline and any other program
open the slave end (``/dev/pts/N``) with pyserial exactly like ``/dev/ttyACM0``.
The slave is put in raw mode (no echo, no CR/LF translation), so the bytes a
client reads are the bytes the device wrote. The server keeps its own handle
on the slave so the port stays up between clients, as a plugged-in unit's does.

What the port says depends on the device, re-read from the tray before every
answer (so a flash by another process changes what the port says next):

* ``never_answers`` → nothing, ever;
* a valid test-firmware user part (and normal mode) → the JSON-lines test
  firmware protocol (:mod:`trayline.virtual.testfw`); ``reset`` answers
  ``{"ok": true}``, reboots the device from flash and keeps the port silent
  for the reboot time (the pty path stays the same);
* listening mode → the single-character console (:mod:`trayline.virtual.listening`);
* otherwise (production firmware, DFU, safe mode) → silence.

``slow_console`` delays every answer line by that many real seconds. Setting
the line coding to 28800 baud puts a Device OS < 6.0 unit in listening mode and
14400 baud puts it in DFU mode (spec §3.7), detected by watching the pty's
termios as a device sees SET_LINE_CODING.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import selectors
import struct
import termios
import threading
import time
import tty
from dataclasses import dataclass, field

from trayline.core.versions import SemVer
from trayline.virtual.device import DeviceMode, VirtualDevice
from trayline.virtual.listening import answer
from trayline.virtual.records import TrayFileError
from trayline.virtual.testfw import handle_line
from trayline.virtual.tray import Tray

__all__ = ["DevicePort", "PortServer"]

REBOOT_SECONDS = 2.0
"""Simulated time a reset keeps the port silent (scaled by the time scale)."""
_LISTEN_BAUD, _DFU_BAUD = 28800, 14400
_YMODEM_REMOVED = SemVer(6, 0, 0)
_TCGETS2 = 0x802C542A  # _IOR('T', 0x2A, struct termios2), Linux
_TERMIOS2 = struct.Struct("IIIIB19sII")


def _line_speed(fd: int) -> int | None:
    """The baud rate the client last set (Linux ``TCGETS2``); ``None`` if unavailable."""
    try:
        raw = fcntl.ioctl(fd, _TCGETS2, bytes(_TERMIOS2.size))
    except OSError:
        return None
    return int(_TERMIOS2.unpack(raw)[-1])


def _raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass(slots=True)
class _Outgoing:
    due: float
    data: bytes


@dataclass(slots=True)
class DevicePort:
    """The pty of one device and the device's side of the conversation."""

    tray: Tray
    device_id: str
    time_scale: float = 1.0
    master: int = -1
    slave: int = -1
    path: str = ""
    _line: bytearray = field(default_factory=bytearray)
    _queue: list[_Outgoing] = field(default_factory=list)
    _silent_until: float = 0.0
    _speed: int | None = None
    _stamp: tuple[int, ...] = ()
    _device: VirtualDevice | None = None

    def open(self) -> str:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._speed = _line_speed(self.master)
        return self.path

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    # -- the device, re-read when its files change ---------------------------------------

    def _files_stamp(self) -> tuple[int, ...]:
        folder = self.tray.device_dir(self.device_id)
        stamp: list[int] = []
        for path in (
            folder / "flash.bin",
            folder / "dct.bin",
            folder / "state.json",
            self.tray.devices_json,
        ):
            try:
                info = path.stat()
            except OSError:
                stamp += [0, 0]
                continue
            stamp += [info.st_mtime_ns, info.st_ino]
        return tuple(stamp)

    def device(self) -> VirtualDevice:
        stamp = self._files_stamp()
        if self._device is None or stamp != self._stamp:
            self._device = self.tray.load(self.device_id)
            self._stamp = stamp
        return self._device

    # -- input ------------------------------------------------------------------------

    def on_input(self, data: bytes, now: float) -> None:
        """Bytes from the host: answer as the device in its current state would."""
        try:
            device = self.device()
        except TrayFileError:
            return  # a broken devices.json mid-edit: the device is unplugged until it is fixed
        if device.faults.never_answers or now < self._silent_until:
            return
        if device.mode is DeviceMode.NORMAL and device.runs_test_firmware():
            self._line += data
            while b"\n" in self._line:
                line, _, rest = self._line.partition(b"\n")
                self._line = bytearray(rest)
                self._test_firmware_line(device, bytes(line), now)
                device = self.device()
        elif device.mode is DeviceMode.LISTENING:
            for char in data.decode("latin-1"):
                self._send(device, answer(device, char), now)
                if char == "x":
                    self._set_mode(DeviceMode.NORMAL)
                    break

    def _test_firmware_line(self, device: VirtualDevice, line: bytes, now: float) -> None:
        reply = handle_line(device, line)
        self._send(device, b"".join(reply.encoded()), now)
        if reply.action == "setup_done":
            with self.tray.session(self.device_id) as live:
                live.set_setup_done(True)
        elif reply.action == "reset":
            with self.tray.session(self.device_id) as live:
                live.boot()
            self._silent_until = self._last_due(now) + REBOOT_SECONDS * self.time_scale
            self._line.clear()

    def _set_mode(self, mode: DeviceMode) -> None:
        with self.tray.session(self.device_id) as live:
            live.enter_mode(mode)

    def _last_due(self, now: float) -> float:
        return max([now, *(item.due for item in self._queue)])

    def _send(self, device: VirtualDevice, data: bytes, now: float) -> None:
        if not data:
            return
        delay = device.faults.slow_console
        if delay <= 0:
            self._queue.append(_Outgoing(now, data))
            return
        due = self._last_due(now)
        for line in data.splitlines(keepends=True):
            due += delay
            self._queue.append(_Outgoing(due, line))

    # -- line coding (SET_LINE_CODING) ----------------------------------------------------

    def poll_line_coding(self) -> None:
        speed = _line_speed(self.master)
        if speed is None or speed == self._speed:
            return
        self._speed = speed
        if speed not in (_LISTEN_BAUD, _DFU_BAUD):
            return
        try:
            device = self.device()
        except TrayFileError:
            return
        if device.faults.never_answers:
            return
        release = device.device_os()
        if speed == _DFU_BAUD:
            self._set_mode(DeviceMode.DFU)
        elif release is not None and release < _YMODEM_REMOVED:
            self._set_mode(DeviceMode.LISTENING)

    # -- output -----------------------------------------------------------------------

    def next_due(self) -> float | None:
        return min((item.due for item in self._queue), default=None)

    def flush(self, now: float) -> None:
        """Write every queued answer whose time has come (non-blocking; the rest waits)."""
        while self._queue and self._queue[0].due <= now:
            item = self._queue[0]
            try:
                written = os.write(self.master, item.data)
            except BlockingIOError:
                return
            except OSError:
                self._queue.clear()
                return
            if written < len(item.data):
                item.data = item.data[written:]
                return
            self._queue.pop(0)


class PortServer:
    """Runs the ptys of a tray's devices in one thread: select, answer, flush, repeat."""

    def __init__(
        self, tray: Tray, device_ids: list[str] | None = None, *, time_scale: float = 1.0
    ) -> None:
        self.tray = tray
        ids = device_ids if device_ids is not None else tray.device_ids()
        self.ports = {device_id: DevicePort(tray, device_id, time_scale) for device_id in ids}
        self._selector = selectors.DefaultSelector()
        self.stop = threading.Event()

    def open(self) -> dict[str, str]:
        """Open every pty; returns ``{device_id: /dev/pts/N}``.

        Each device takes two file descriptors, so the soft open-files limit is
        raised towards the hard one first; an ``OSError`` (too many files, no
        ptys left) closes what was opened and propagates.
        """
        _raise_open_files_limit(2 * len(self.ports) + 64)
        paths = {}
        try:
            for device_id, port in self.ports.items():
                paths[device_id] = port.open()
                self._selector.register(port.master, selectors.EVENT_READ, port)
        except OSError:
            self.close()
            raise
        return paths

    def step(self, timeout: float = 0.05) -> None:
        """One round: read what arrived, answer, poll line codings, send what is due."""
        now = time.monotonic()
        dues = [d for p in self.ports.values() if (d := p.next_due()) is not None]
        wait = max(0.0, min([timeout, *(d - now for d in dues)]))
        for key, _ in self._selector.select(wait):
            port: DevicePort = key.data
            try:
                data = os.read(port.master, 4096)
            except (BlockingIOError, OSError):
                continue
            port.on_input(data, time.monotonic())
        now = time.monotonic()
        for port in self.ports.values():
            port.poll_line_coding()
            port.flush(now)

    def serve(self) -> None:
        """Run until :attr:`stop` is set (signal handlers set it)."""
        while not self.stop.is_set():
            self.step()

    def close(self) -> None:
        self._selector.close()
        for port in self.ports.values():
            port.close()

"""The debug-port side of a virtual device: what a probe on its SWD pins experiences.

A programmer backend talks to :class:`DebugPort`, never to the device files:
the port adds what the wire adds — a connect that can fail (the
``swd_connect_failures`` fault, counted across processes), a target that never
answers (``never_answers``), a closed access port (``protected``), and the
time each operation costs on the chosen link (:mod:`trayline.virtual.timing`).

Every operation is one :meth:`Tray.session <trayline.virtual.tray.Tray.session>`:
the device's lock is held while the simulated time passes, so a second
process touching the same device waits, as a second probe on the same pins
would. Between operations other processes may read the device (a console, a
second ``trayline device identify``).
"""

from __future__ import annotations

from trayline.virtual.device import DeviceMode, VirtualDevice
from trayline.virtual.errors import ConnectFailed, NoResponse, VirtualDeviceError
from trayline.virtual.timing import DEFAULT_LINK, SimClock, TimingModel
from trayline.virtual.tray import Tray

__all__ = ["DebugPort"]


class DebugPort:
    """SWD access to one device of a tray over one link, with faults and simulated time."""

    def __init__(
        self,
        tray: Tray,
        device_id: str,
        *,
        link: str = DEFAULT_LINK,
        clock: SimClock | None = None,
    ) -> None:
        self.tray = tray
        self.device_id = device_id.strip().lower()
        record = tray.record(self.device_id)
        snapshot = tray.load(self.device_id)
        self.platform_id = record.identity.platform_id
        self.timing = TimingModel.for_link(snapshot.geometry.mcu, link)
        self.clock = clock if clock is not None else SimClock(0.0)
        self.connected = False

    def _check_connected(self) -> None:
        if not self.connected:
            raise VirtualDeviceError(f"device {self.device_id}: the debug port is not connected")

    def connect(self) -> None:
        """Attach to the target: may fail (fault), never answer (fault) or find it protected."""
        with self.tray.session(self.device_id) as device:
            if device.faults.never_answers:
                raise NoResponse(f"device {self.device_id}: no answer on SWD (check power)")
            if device.state.connect_failures_used < device.faults.swd_connect_failures:
                device.state.connect_failures_used += 1
                self.clock.spend(self.timing.link.connect_s)
                raise ConnectFailed(
                    f"device {self.device_id}: SWD connect failed "
                    f"(failure {device.state.connect_failures_used} of "
                    f"{device.faults.swd_connect_failures})"
                )
            self.clock.spend(self.timing.link.connect_s)
            device.check_access()
        self.connected = True

    def read(self, address: int, length: int) -> bytes:
        """Read memory (flash, FICR/UICR, STM32 UID) through the access port."""
        self._check_connected()
        device = self.tray.load(self.device_id)
        data = device.read_memory(address, length)
        self.clock.spend(self.timing.read_seconds(length))
        return data

    def program(self, address: int, data: bytes) -> int:
        """Erase the pages/sectors under ``data`` and write it; returns the bits left unset.

        Erase whole units first, as every flash loader does: what else lived in
        a touched sector is gone (an Electron 128 KB sector, a 4 KB nRF page).
        """
        self._check_connected()
        with self.tray.session(self.device_id) as device:
            units = device.erase(address, address + len(data))
            unset = device.write(address, data)
            sizes = [end - start for start, end in units]
            self.clock.spend(
                self.timing.erase_seconds(sizes) + self.timing.write_seconds(len(data))
            )
        return unset

    def reset(self) -> DeviceMode:
        """System reset: the device boots from what is in flash now; returns the mode it is in."""
        self._check_connected()
        with self.tray.session(self.device_id) as device:
            mode = device.boot()
            self.clock.spend(self.timing.link.reset_s)
        return mode

    def mass_erase(self) -> None:
        """CTRL-AP ERASEALL / RDP regression: wipes flash and UICR, lifts protection."""
        with self.tray.session(self.device_id) as device:
            if device.faults.never_answers:
                raise NoResponse(f"device {self.device_id}: no answer on SWD (check power)")
            device.mass_erase()
            self.clock.spend(self.timing.chip.mass_erase_s)
        self.connected = True

    def device(self) -> VirtualDevice:
        """A snapshot of the device as it is now (for tests and the USB side)."""
        return self.tray.load(self.device_id)

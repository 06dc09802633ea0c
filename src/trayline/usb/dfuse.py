"""DfuSe over pyusb: write a module at its address, read it back, leave DFU mode.

A Particle device in DFU mode (blinking yellow, PID 0xD0xx) runs its
bootloader's DfuSe implementation (spec §2.5). :class:`DfuSeDevice` speaks
it the way dfu-util does:

* the alt settings and their memory strings come from the interface
  descriptors; a write is checked against the layout first (a read-only
  sector — the MBR, the top of the Gen 3 bootloader, the Electron's
  bootloader sectors — is refused before anything is sent);
* ``g`` sectors are erased page by page (DfuSe ERASE command) before they are
  written; ``e`` sectors (the DCT, alt 1) are written without erase;
* data goes in blocks of the functional descriptor's ``wTransferSize``
  (4096): SET_ADDRESS, DNLOAD, then GETSTATUS until the device leaves
  dfuDNBUSY — sleeping the ``bwPollTimeout`` it asks for, which is where the
  device's erase/write time is spent;
* :meth:`read` goes back to dfuIDLE (ABORT) and UPLOADs, for verification;
* :meth:`leave` is dfu-util's ``:leave``: SET_ADDRESS, a zero-length DNLOAD
  and a GETSTATUS, after which the device resets into its firmware.

A device error (bStatus ≠ OK or dfuERROR) raises :class:`DfuError` with the
status name, after a CLRSTATUS so the next command starts clean.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import usb.core
import usb.util

from trayline.usb.dfu_memory import MemoryLayout, MemoryStringError, parse_memory_string
from trayline.usb.dfu_protocol import (
    CMD_ERASE,
    CMD_SET_ADDRESS,
    TRANSFER_SIZE,
    DfuRequest,
    DfuState,
    DfuStatus,
    StatusReply,
    parse_functional_descriptor,
)
from trayline.usb.pipe import CLASS_INTERFACE_IN, CLASS_INTERFACE_OUT, PyUsbPipe
from trayline.usb.results import DeviceGone, UsbError

__all__ = ["DfuError", "DfuSeDevice", "ReadOnlyRegion"]

_TIMEOUT_MS = 5000
_MAX_BUSY_POLLS = 10_000


class DfuError(UsbError):
    """The DFU bootloader reported an error status (errWRITE, errADDRESS, …)."""


class ReadOnlyRegion(UsbError):
    """A write or read the alt setting's memory string does not allow; nothing was sent."""


class DfuSeDevice:
    """One device in DFU mode; ``interface`` is its DFU interface number (0 on Particle)."""

    def __init__(
        self,
        dev: Any,
        device_id: str,
        *,
        interface: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dev = dev
        self.device_id = device_id
        self.interface = interface
        self._sleep = sleep
        self.pipe = PyUsbPipe(dev, device_id)
        self.layouts: dict[int, MemoryLayout] = {}
        self.transfer_size = TRANSFER_SIZE
        self._alt: int | None = None
        self._read_descriptors()

    def _read_descriptors(self) -> None:
        try:
            config = self.dev.get_active_configuration()
        except usb.core.USBError:  # no active configuration yet: set the first one
            self.dev.set_configuration()
            config = self.dev.get_active_configuration()
        for intf in config:
            if intf.bInterfaceNumber != self.interface:
                continue
            text = usb.util.get_string(self.dev, intf.iInterface) or ""
            try:
                self.layouts[int(intf.bAlternateSetting)] = parse_memory_string(text)
            except MemoryStringError as exc:
                raise UsbError(
                    f"alt {intf.bAlternateSetting}: {exc}", device=self.device_id
                ) from None
            size = parse_functional_descriptor(bytes(intf.extra_descriptors or b""))
            if size:
                self.transfer_size = size

    def close(self) -> None:
        usb.util.dispose_resources(self.dev)

    # -- single requests ----------------------------------------------------

    def _out(self, request: DfuRequest, value: int, data: bytes, what: str) -> None:
        self.pipe.transfer(
            CLASS_INTERFACE_OUT, request, value, self.interface, data, _TIMEOUT_MS, what
        )

    def _in(self, request: DfuRequest, value: int, length: int, what: str) -> bytes:
        out = self.pipe.transfer(
            CLASS_INTERFACE_IN, request, value, self.interface, length, _TIMEOUT_MS, what
        )
        return out if isinstance(out, bytes) else b""

    def get_status(self) -> StatusReply:
        return StatusReply.decode(self._in(DfuRequest.GETSTATUS, 0, 6, "DFU_GETSTATUS"))

    def clear_status(self) -> None:
        self._out(DfuRequest.CLRSTATUS, 0, b"", "DFU_CLRSTATUS")

    def abort(self) -> None:
        self._out(DfuRequest.ABORT, 0, b"", "DFU_ABORT")

    def select_alt(self, alt: int) -> MemoryLayout:
        if alt not in self.layouts:
            raise UsbError(
                f"no DFU alt setting {alt} (the device offers {sorted(self.layouts)})",
                device=self.device_id,
            )
        if self._alt != alt:
            try:
                self.dev.set_interface_altsetting(interface=self.interface, alternate_setting=alt)
            except usb.core.USBError as exc:
                raise UsbError(
                    f"cannot select DFU alt {alt}: {exc}", device=self.device_id
                ) from None
            self._alt = alt
        return self.layouts[alt]

    def _wait(self, what: str) -> StatusReply:
        """GETSTATUS until the device is no longer busy; raise on an error status."""
        for _ in range(_MAX_BUSY_POLLS):
            status = self.get_status()
            if status.status != DfuStatus.OK or status.state == DfuState.DFU_ERROR:
                self.clear_status()
                name = DfuStatus(status.status).name if status.status < 16 else status.status
                raise DfuError(f"{what}: device reported {name}", device=self.device_id)
            if status.state not in (DfuState.DFU_DNBUSY, DfuState.DFU_DNLOAD_SYNC):
                return status
            self._sleep(status.poll_timeout_ms / 1000.0)
        raise DfuError(f"{what}: device stayed busy", device=self.device_id)

    def _command(self, command: int, address: int, what: str) -> None:
        self._out(DfuRequest.DNLOAD, 0, struct.pack("<BI", command, address), what)
        self._wait(what)

    def set_address(self, address: int) -> None:
        self._command(CMD_SET_ADDRESS, address, f"set address {address:#010x}")

    def erase_page(self, address: int) -> None:
        self._command(CMD_ERASE, address, f"erase page {address:#010x}")

    def _to_idle(self) -> None:
        status = self.get_status()
        if status.state == DfuState.DFU_ERROR:
            self.clear_status()
        elif status.state != DfuState.DFU_IDLE:
            self.abort()

    # -- whole operations ---------------------------------------------------

    def write(self, alt: int, address: int, data: bytes) -> None:
        """Erase what the layout says must be erased, then download ``data`` at ``address``."""
        layout = self.select_alt(alt)
        try:
            sectors = layout.check_write(address, len(data))
        except MemoryStringError as exc:
            raise ReadOnlyRegion(str(exc), device=self.device_id) from None
        self._to_idle()
        for sector in sectors:
            if sector.erasable:
                self.erase_page(sector.start)
        size = self.transfer_size
        for pos in range(0, len(data), size):
            self.set_address(address + pos)
            self._out(
                DfuRequest.DNLOAD, 2, data[pos : pos + size], f"download at {address + pos:#x}"
            )
            self._wait(f"write at {address + pos:#010x}")
        self._to_idle()

    def read(self, alt: int, address: int, length: int) -> bytes:
        """UPLOAD ``length`` bytes from ``address`` (for verification)."""
        layout = self.select_alt(alt)
        try:
            layout.check_read(address, length)
        except MemoryStringError as exc:
            raise ReadOnlyRegion(str(exc), device=self.device_id) from None
        self._to_idle()
        self.set_address(address)
        self.abort()
        out = bytearray()
        block = 2
        while len(out) < length:
            want = min(self.transfer_size, length - len(out))
            chunk = self._in(DfuRequest.UPLOAD, block, want, f"upload at {address + len(out):#x}")
            if not chunk:
                raise DfuError(
                    f"upload stopped after {len(out)} of {length} bytes", device=self.device_id
                )
            out += chunk
            block += 1
        self.abort()
        return bytes(out[:length])

    def leave(self, address: int | None = None) -> None:
        """dfu-util ``:leave``: the device manifests and resets into its firmware."""
        layout = self.select_alt(0)
        self._to_idle()
        self.set_address(layout.start if address is None else address)
        self._out(DfuRequest.DNLOAD, 2, b"", "leave (zero-length download)")
        try:
            self.get_status()
        except DeviceGone:
            pass  # the device reset before answering: that is what leaving means
        finally:
            self.close()

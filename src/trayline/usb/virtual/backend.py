"""A pyusb backend on which virtual Particle devices enumerate.

``usb.core.find(backend=VirtualBackend(...))`` lists virtual devices exactly
as libusb lists real ones, so trayline's USB code — discovery, the service
protocol, DfuSe, the ``usb`` programmer — runs unchanged against them. The
backend implements pyusb's ``usb.backend.IBackend``: enumeration, device /
configuration / interface descriptors, open/close, configuration and
alternate setting, control transfers. Failures are raised as pyusb raises
libusb's: ``USBError`` with ``NO_DEVICE`` for a detached device, ``PIPE`` for
a STALL, ``USBTimeoutError`` for a device that never answers.

There is no global lock: each gadget has its own, and the time a device
spends erasing or resetting is real sleeping (scaled) in the *host's* thread
(the DFU poll timeout, the CHECK back-off), so eight threads flashing eight
devices overlap as they would on eight USB ports.

Sources: :class:`InMemorySource` (tests, benchmarks) or :class:`TraySource`
— a :class:`trayline.virtual.tray.Tray` folder shared between processes: the
device is loaded under its lock when a handle opens and saved when the last
handle closes. ``VirtualBackend.from_tray(DIR)`` is what ``--virtual DIR``
uses.
"""

from __future__ import annotations

import errno
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import usb.backend
import usb.core

from trayline.core.platforms import NRF52840_PLATFORM_IDS
from trayline.usb.virtual.channel import Stall
from trayline.usb.virtual.gadget import Descriptor, Gone, InMemorySource, TargetSource, UsbGadget
from trayline.usb.virtual.target import EnumeratedDevice, UsbTarget
from trayline.virtual.device import Faults
from trayline.virtual.timing import time_scale_from_env
from trayline.virtual.tray import Tray

__all__ = ["TraySource", "VirtualBackend"]

_LIBUSB_ERROR_NO_DEVICE, _LIBUSB_ERROR_PIPE, _LIBUSB_ERROR_TIMEOUT = -4, -9, -7


@dataclass(frozen=True, slots=True)
class _TrayDeviceView:
    """A tray device as enumeration sees it: its record and the mode in ``state.json``."""

    device_id: str
    platform_id: int
    is_gen3: bool
    mode: str
    faults: Faults


class TraySource:
    """A device of a tray folder: loaded under the tray's per-device lock while a handle is open.

    Enumeration (``peek``, on every ``usb.core.find``) reads only the device's
    record and the mode in its ``state.json`` — files the tray replaces
    atomically — and takes no lock, so listing the bus never waits for a
    device another programmer (thread or process) is flashing.
    """

    def __init__(self, tray: Tray, device_id: str) -> None:
        self.tray = tray
        self.device_id = device_id
        self._stack: ExitStack | None = None
        self._live: UsbTarget | None = None

    def peek(self) -> EnumeratedDevice:
        if self._live is not None:
            return self._live
        record = self.tray.record(self.device_id)
        state_file = self.tray.device_dir(self.device_id) / "state.json"
        try:
            mode = str(json.loads(state_file.read_text()).get("mode", "normal"))
        except (OSError, ValueError, AttributeError):
            mode = "normal"
        platform = record.identity.platform_id
        return _TrayDeviceView(
            self.device_id, platform, platform in NRF52840_PLATFORM_IDS, mode, record.faults
        )

    def acquire(self) -> UsbTarget:
        stack = ExitStack()
        self._live = stack.enter_context(self.tray.session(self.device_id))
        self._stack = stack
        return self._live

    def release(self) -> None:
        stack, self._stack, self._live = self._stack, None, None
        if stack is not None:
            stack.close()


@dataclass(frozen=True, slots=True)
class _DeviceRef:
    gadget: UsbGadget
    generation: int


@dataclass(frozen=True, slots=True)
class _Handle:
    gadget: UsbGadget
    generation: int


def _gone(exc: Exception) -> usb.core.USBError:
    return usb.core.USBError(
        f"No such device (it may have been disconnected): {exc}",
        _LIBUSB_ERROR_NO_DEVICE,
        errno.ENODEV,
    )


class VirtualBackend(usb.backend.IBackend):  # type: ignore[misc]
    """pyusb backend over virtual devices; ``time_scale`` 0 = instant, 1 = real time."""

    def __init__(self, sources: Sequence[TargetSource] = (), *, time_scale: float = 0.0) -> None:
        super().__init__()
        if time_scale < 0:
            raise ValueError("time scale must be >= 0")
        self.time_scale = time_scale
        self._addresses = itertools.count(1)
        self._address_lock = threading.Lock()
        self.gadgets: list[UsbGadget] = []
        for source in sources:
            self.add(source)

    @classmethod
    def from_targets(
        cls, targets: Sequence[UsbTarget], *, time_scale: float = 0.0
    ) -> VirtualBackend:
        return cls([InMemorySource(t) for t in targets], time_scale=time_scale)

    @classmethod
    def from_tray(cls, folder: Path | str, *, time_scale: float | None = None) -> VirtualBackend:
        """The devices of a tray folder; ``time_scale`` ``None`` = ``TRAYLINE_VIRTUAL_TIME_SCALE``
        (else 1, like the ``virtual`` backend). ``ValueError`` for a bad variable."""
        if time_scale is None:
            time_scale = time_scale_from_env()
        tray = Tray(folder)
        return cls([TraySource(tray, d) for d in tray.device_ids()], time_scale=time_scale)

    def _next_address(self) -> int:
        with self._address_lock:
            return next(self._addresses) % 127 + 1

    def add(self, source: TargetSource) -> UsbGadget:
        gadget = UsbGadget(source, scale=self.time_scale, bus=1, next_address=self._next_address)
        self.gadgets.append(gadget)
        return gadget

    def gadget(self, device_id: str) -> UsbGadget:
        for gadget in self.gadgets:
            if gadget.device_id == device_id.lower():
                return gadget
        raise KeyError(device_id)

    # -- IBackend ------------------------------------------------------------------------

    def enumerate_devices(self) -> Iterator[_DeviceRef]:
        for gadget in list(self.gadgets):
            if gadget.visible():
                yield _DeviceRef(gadget, gadget.generation)

    def get_device_descriptor(self, dev: _DeviceRef) -> Descriptor:
        return dev.gadget.device_descriptor()

    def get_configuration_descriptor(self, dev: _DeviceRef, config: int) -> Descriptor:
        if config != 0:
            raise IndexError(config)
        return Descriptor(
            bLength=9, bDescriptorType=2, wTotalLength=9, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=0xC0, bMaxPower=50,
            extra_descriptors=[],
        )  # fmt: skip

    def get_interface_descriptor(
        self, dev: _DeviceRef, intf: int, alt: int, config: int
    ) -> Descriptor:
        if config != 0:
            raise IndexError(config)
        return dev.gadget.interface_descriptor(intf, alt)

    def get_endpoint_descriptor(
        self, dev: _DeviceRef, ep: int, intf: int, alt: int, config: int
    ) -> Descriptor:
        raise IndexError(ep)

    def open_device(self, dev: _DeviceRef) -> _Handle:
        gadget = dev.gadget
        if dev.generation != gadget.generation or not gadget.visible():
            raise _gone(RuntimeError("detached before open"))
        return _Handle(gadget, gadget.open())

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.gadget.close()

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        self._check(dev_handle)

    def get_configuration(self, dev_handle: _Handle) -> int:
        self._check(dev_handle)
        return 1

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        self._check(dev_handle)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        return None

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        self._check(dev_handle)
        dev_handle.gadget.ensure_live()
        dfu = dev_handle.gadget.dfu
        if dfu is None:
            if altsetting:
                raise usb.core.USBError("Pipe error", _LIBUSB_ERROR_PIPE, errno.EPIPE)
            return
        try:
            dfu.select_alt(altsetting)
        except Stall as exc:
            raise usb.core.USBError(f"Pipe error: {exc}", _LIBUSB_ERROR_PIPE, errno.EPIPE) from None

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        return None

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        return None

    def _check(self, dev_handle: _Handle) -> None:
        try:
            dev_handle.gadget.check(dev_handle.generation)
        except Gone as exc:
            raise _gone(exc) from None
        except TimeoutError:
            raise usb.core.USBTimeoutError(
                "Operation timed out", _LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT
            ) from None

    def ctrl_transfer(
        self, dev_handle: _Handle, bmRequestType: int, bRequest: int, wValue: int,
        wIndex: int, data: Any, timeout: int,
    ) -> int:  # fmt: skip
        self._check(dev_handle)
        inbound = bool(bmRequestType & 0x80)
        payload = b"" if inbound else bytes(data)
        length = len(data) if inbound else 0
        try:
            out = dev_handle.gadget.control(
                dev_handle.generation, bmRequestType, bRequest, wValue, wIndex, payload, length
            )
        except Gone as exc:
            raise _gone(exc) from None
        except Stall as exc:
            raise usb.core.USBError(f"Pipe error: {exc}", _LIBUSB_ERROR_PIPE, errno.EPIPE) from None
        if not inbound:
            return len(payload)
        reply = out or b""
        data[: len(reply)] = (
            type(data)(data.typecode, reply) if hasattr(data, "typecode") else reply
        )
        return len(reply)

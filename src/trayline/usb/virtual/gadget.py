"""One virtual Particle device on the virtual USB bus: descriptors, control requests, resets.

A :class:`UsbGadget` shows its simulated device the way the bus would:

* the device descriptor carries VID 0x2B04 and the platform's PID for the
  current mode (0xC0xx normal/listening/safe, 0xD0xx DFU; spec §0), the
  serial-number string is the device ID (uppercase in normal mode, lowercase
  from the DFU bootloader, as Device OS does);
* in normal mode vendor requests go to the service channel
  (:mod:`.channel`) and the raw vendor request 0x50 (type 20 device ID in
  uppercase, 30 system version, 40 reset); in DFU mode class requests go to
  the DfuSe state machine (:mod:`.dfu`) and the alt settings' interface
  strings are the memory strings;
* a reset or mode change *detaches* the device: handles opened before it fail
  with "no device", and it enumerates again — with a new bus address and
  maybe another PID — after the spec's delay (5 s for a reset or a mode
  change, §10.4) multiplied by the time scale.

The simulated device comes from a :class:`TargetSource`: in memory (tests,
benchmarks) or a tray folder shared between processes
(:class:`trayline.usb.virtual.backend.TraySource`), which locks the device
while a handle is open and saves it when the handle closes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from trayline.core.platforms import PLATFORM_INFO
from trayline.usb.dfu_protocol import (
    DFU_CLASS,
    DFU_PROTOCOL_DFU_MODE,
    DFU_SUBCLASS,
    functional_descriptor,
)
from trayline.usb.messages import RequestType
from trayline.usb.protocol import RAW_VENDOR_REQUEST
from trayline.usb.vidpid import PARTICLE_VID, UsbMode, pid_for
from trayline.usb.virtual.channel import ServiceChannel, Stall
from trayline.usb.virtual.dfu import DfuTarget, memory_strings
from trayline.usb.virtual.requests import DeviceRequests, ModeChanges
from trayline.usb.virtual.target import EnumeratedDevice, UsbTarget
from trayline.virtual.device import DeviceMode
from trayline.virtual.timing import LINKS

__all__ = ["Descriptor", "Gone", "InMemorySource", "TargetSource", "UsbGadget"]

_USB_LINK = LINKS["usb-dfu"]
GET_DESCRIPTOR, STRING = 6, 3
_LANGID_EN_US = 0x0409


class Gone(Exception):
    """The handle's device detached (reset, mode change) or the device never answers."""


class Descriptor:
    """Attribute bag pyusb reads descriptor fields from."""

    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


class TargetSource(Protocol):
    """Where a gadget's simulated device lives."""

    @property
    def device_id(self) -> str: ...

    def peek(self) -> EnumeratedDevice:
        """The device as the bus shows it now, for enumeration (takes no lock)."""
        ...

    def acquire(self) -> UsbTarget:
        """The device for an open handle (exclusive until :meth:`release`)."""
        ...

    def release(self) -> None: ...


@dataclass(slots=True)
class InMemorySource:
    """A simulated device held in this process only."""

    target: UsbTarget

    @property
    def device_id(self) -> str:
        return self.target.device_id

    def peek(self) -> EnumeratedDevice:
        return self.target

    def acquire(self) -> UsbTarget:
        return self.target

    def release(self) -> None:
        return None


class UsbGadget:
    """One device on the virtual bus."""

    def __init__(
        self,
        source: TargetSource,
        *,
        scale: float,
        bus: int,
        next_address: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.device_id = source.device_id
        self.scale = scale
        self.bus = bus
        self._next_address = next_address
        self.address = next_address()
        self._clock = clock
        self.generation = 0
        self.visible_at = 0.0
        self._lock = threading.Lock()
        self._open = 0
        self._target: UsbTarget | None = None
        self.channel: ServiceChannel | None = None
        self.dfu: DfuTarget | None = None
        self.device_seconds = 0.0

    # -- what the bus sees ----------------------------------------------------------

    def visible(self) -> bool:
        return self._clock() >= self.visible_at

    def current(self) -> EnumeratedDevice:
        with self._lock:
            return self._target if self._target is not None else self.source.peek()

    def live(self) -> UsbTarget:
        """The device behind an open handle (control transfers only happen on one)."""
        target = self._target
        if target is None:
            raise Gone(self.device_id)
        return target

    def mode(self) -> UsbMode:
        return UsbMode.DFU if self.current().mode == DeviceMode.DFU else UsbMode.NORMAL

    def device_descriptor(self) -> Descriptor:
        target = self.current()
        mode = self.mode()
        return Descriptor(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200,
            bDeviceClass=0 if mode is UsbMode.DFU else 0xEF, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=PARTICLE_VID,
            idProduct=pid_for(target.platform_id, mode), bcdDevice=0x0250,
            iManufacturer=1, iProduct=2, iSerialNumber=3, bNumConfigurations=1,
            address=self.address, bus=self.bus, port_number=self.bus, port_numbers=(self.bus,),
            speed=2,
        )  # fmt: skip

    def alt_strings(self) -> list[str]:
        target = self.current()
        return memory_strings(
            target.platform_id, gen3=target.is_gen3, protected=target.faults.protected
        )

    def interface_descriptor(self, intf: int, alt: int) -> Descriptor:
        if intf != 0:
            raise IndexError(intf)
        if self.mode() is UsbMode.DFU:
            if alt >= len(self.alt_strings()):
                raise IndexError(alt)
            return Descriptor(
                bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=alt,
                bNumEndpoints=0, bInterfaceClass=DFU_CLASS, bInterfaceSubClass=DFU_SUBCLASS,
                bInterfaceProtocol=DFU_PROTOCOL_DFU_MODE, iInterface=4 + alt,
                extra_descriptors=list(functional_descriptor()),
            )  # fmt: skip
        if alt:
            raise IndexError(alt)
        return Descriptor(
            bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
            bNumEndpoints=0, bInterfaceClass=0xFF, bInterfaceSubClass=0, bInterfaceProtocol=0,
            iInterface=0, extra_descriptors=[],
        )  # fmt: skip

    def string(self, index: int) -> str:
        target = self.current()
        dfu = self.mode() is UsbMode.DFU
        if index == 1:
            return "Particle"
        if index == 2:
            info = PLATFORM_INFO.get(target.platform_id)
            name = info.display_name if info else f"Platform {target.platform_id}"
            return f"{name} DFU Mode" if dfu else name
        if index == 3:
            return target.device_id.lower() if dfu else target.device_id.upper()
        strings = self.alt_strings() if dfu else []
        if 4 <= index < 4 + len(strings):
            return strings[index - 4]
        raise Stall(f"no string descriptor {index}")

    # -- handles ----------------------------------------------------------------------

    def open(self) -> int:
        """A handle for the current generation. The device itself is acquired from its
        source only when a request needs it (:meth:`ensure_live`): reading the serial
        string of a device that another programmer holds must not wait for it."""
        with self._lock:
            self._open += 1
            return self.generation

    def ensure_live(self) -> UsbTarget:
        """Acquire the device for the open handles (a tray device's lock is taken here)."""
        with self._lock:
            if self._target is None:
                if self._open == 0:
                    raise Gone(self.device_id)
                self._target = self.source.acquire()
                self._build(self._target)
            return self._target

    def close(self) -> None:
        with self._lock:
            self._open = max(0, self._open - 1)
            if self._open == 0 and self._target is not None:
                self._target = None
                self.channel = None
                self.dfu = None
                self.source.release()

    def _build(self, target: UsbTarget) -> None:
        changes = ModeChanges(
            reset=lambda: self.detach(None, _USB_LINK.reset_s),
            enter_dfu=lambda: self.detach(DeviceMode.DFU, _USB_LINK.mode_change_s),
            enter_safe=lambda: self.detach(DeviceMode.SAFE, _USB_LINK.reset_s),
        )
        self.channel = ServiceChannel(DeviceRequests(target, changes), scale=self.scale)
        self.dfu = None
        if target.mode == DeviceMode.DFU:
            self.dfu = DfuTarget(
                target, scale=self.scale, on_leave=lambda: self.detach(None, _USB_LINK.reset_s)
            )

    def detach(self, mode: DeviceMode | None, delay_s: float) -> None:
        """Disconnect now; re-enumerate ``delay_s`` of device time later (``None`` = boot)."""
        with self._lock:
            target = self._target
            borrowed = target is None
            if target is None:
                target = self.source.acquire()
            try:
                if self.dfu is not None:
                    self.device_seconds += self.dfu.device_seconds
                if mode is None:
                    target.boot()
                else:
                    target.enter_mode(mode)
            finally:
                if borrowed:
                    self.source.release()
            self.generation += 1
            self.address = self._next_address()
            self.device_seconds += delay_s
            self.visible_at = self._clock() + delay_s * self.scale
            if not borrowed:
                self._build(target)

    def check(self, generation: int) -> None:
        if generation != self.generation or not self.visible():
            raise Gone(self.device_id)
        if self.current().faults.never_answers:
            raise TimeoutError(self.device_id)

    # -- control transfers ---------------------------------------------------------------

    def control(self, generation: int, bm: int, request: int, value: int, index: int,
                data: bytes, length: int) -> bytes | None:  # fmt: skip
        """One control transfer; returns the IN data stage, ``None`` for OUT."""
        self.check(generation)
        kind = bm & 0x60
        if kind == 0 and bm & 0x80 and request == GET_DESCRIPTOR:
            return self._get_descriptor(value, length)
        self.ensure_live()
        if kind == 0x40:
            return self._vendor(bm, request, value, index, data, length)
        if kind == 0x20 and self.dfu is not None:
            if bm & 0x80:
                return self.dfu.handle_in(request, value, length)[:length]
            self.dfu.handle_out(request, value, data)
            return None
        raise Stall(f"unsupported control request {bm:#04x}/{request}")

    def _get_descriptor(self, value: int, length: int) -> bytes:
        kind, index = value >> 8, value & 0xFF
        if kind != STRING:
            raise Stall(f"descriptor type {kind} not served")
        if index == 0:
            body = _LANGID_EN_US.to_bytes(2, "little")
        else:
            body = self.string(index).encode("utf-16-le")
        return (bytes([2 + len(body), STRING]) + body)[:length]

    def _vendor(self, bm: int, request: int, value: int, index: int, data: bytes,
                length: int) -> bytes | None:  # fmt: skip
        channel = self.channel
        if channel is None or self.dfu is not None:
            raise Stall("vendor request in DFU mode")
        if request == RAW_VENDOR_REQUEST:
            return self._raw(bm, index, length)
        if bm & 0x80:
            return channel.handle_in(request, value, index, length)[:length]
        channel.handle_out(request, index, data)
        return None

    def _raw(self, bm: int, request_type: int, length: int) -> bytes | None:
        target = self.live()
        if bm & 0x80:
            if request_type == RequestType.GET_DEVICE_ID:
                return target.device_id.upper().encode()[:length]
            if request_type == RequestType.GET_SYSTEM_VERSION:
                release = target.device_os()
                return (str(release) if release else "").encode()[:length]
            raise Stall(f"raw vendor request {request_type} not served")
        if request_type == RequestType.RESET:
            self.detach(None, _USB_LINK.reset_s)
            return None
        raise Stall(f"raw vendor request {request_type} not served")

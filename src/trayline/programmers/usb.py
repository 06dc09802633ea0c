"""The ``usb`` backend: the Programmer protocol over Particle's control requests and DfuSe.

A slot wired with a plain USB cable — the only way into a Tracker One, and the
only way to reach the Gen 3 setup-done flag — needs neither a debug probe nor
the ``particle`` CLI. This backend does what ``particle flash --local`` and
device-os-flash-util do, in-process, through pyusb:

* **read_device_id**: control request 20 (normal mode) or the DFU serial
  string (DFU mode);
* **read_modules**: request 90 (module info) in normal mode, a flash scan over
  DFU upload in DFU mode;
* **write_module**: the bootloader and the NCP go through the firmware-update
  requests 250/253/251 in normal mode (DFU cannot write the bootloader, §2.5;
  the NCP is not in host flash, §6); every other module is written with DfuSe
  at its address (the device is switched to DFU with request 50 first); a
  Gen 3 user part for 0xB4000 first invalidates the old 128 KB user part at
  0xD4000, which would otherwise keep running (§2.1, particle-cli's
  ``invalidate-128k-user-part`` step);
* **verify**: DFU upload read-back for host-flash modules; for the bootloader
  and NCP, the module info must report the written version as valid;
* **reset**: ``:leave`` in DFU mode, request 40 otherwise — both wait for the
  device to enumerate again;
* **setup done** (:class:`~trayline.programmers.base.SupportsSetupDone`):
  request 73; ``False`` = the device has no flag (Device OS ≥ 4.0, Electron).

Mode changes cost seconds on a real device (reset and re-enumeration), so the
backend stays in the mode it is in until an operation needs the other one.
Several programmers in several threads drive several devices at once: pyusb
keeps one lock per device and libusb releases the GIL.

Probe ID = the device ID. Options: ``tray`` (a virtual tray folder: use
trayline's virtual USB bus instead of libusb; what ``--virtual DIR`` sets, as
for the ``virtual`` backend), ``time_scale`` (virtual only: real seconds per
device second; default ``TRAYLINE_VIRTUAL_TIME_SCALE``, else 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from trayline.core.ids import DeviceId, InvalidIdentifier
from trayline.core.modules import ModuleError, ModuleFunction, parse_module
from trayline.core.platforms import (
    NRF52840_PLATFORM_IDS,
    USER_PART_COMPAT_ADDRESS,
    USER_PART_GEN3_ADDRESS,
    flash_regions,
    platform_name,
)
from trayline.programmers.base import (
    Capability,
    DeviceNotAnswering,
    ModuleOnDevice,
    ProbeInfo,
    ProbeNotFound,
    Programmer,
    ProgrammerError,
    ToolFailed,
    ToolMissing,
    VerifyFailed,
    WriteResult,
)
from trayline.programmers.lifecycle import ClosesOnExit
from trayline.programmers.registry import Backend, BadBackendOption, OpenRequest
from trayline.programmers.scan import scan_modules
from trayline.usb.device import ParticleDevice
from trayline.usb.dfuse import DfuSeDevice, ReadOnlyRegion
from trayline.usb.discovery import find_device, list_devices, wait_for_device
from trayline.usb.messages import FirmwareModule
from trayline.usb.results import DeviceGone, UsbError, UsbPermissionDenied
from trayline.usb.vidpid import NORMAL_PIDS, UsbMode, product_for

__all__ = ["BACKENDS", "UsbProgrammer", "open_usb", "open_usb_programmer"]

T = TypeVar("T")
_CONTROL_FUNCTIONS = frozenset({ModuleFunction.BOOTLOADER, ModuleFunction.NCP_FIRMWARE})
_OPTIONS = frozenset({"tray", "time_scale"})
GEN3_SYSTEM_PART, GEN3_SYSTEM_PART_FROM_6_2 = 0x00030000, 0x00028000
"""Gen 3 system-part1 start: 0x30000 up to Device OS 6.1.x, 0x28000 from 6.2.0 (§2.1)."""


def _module_function(data: bytes) -> int | None:
    try:
        return int(parse_module(data).function)
    except ModuleError:
        return None


class UsbProgrammer(ClosesOnExit):
    """One device on a USB cable, in normal/listening mode or in DFU mode."""

    name = "usb"
    capabilities = frozenset(
        {
            Capability.READ_DEVICE_ID, Capability.READ_MEMORY, Capability.READ_MODULES,
            Capability.WRITE_MODULE, Capability.VERIFY, Capability.RESET,
            Capability.SETUP_DONE, Capability.NCP_UPDATE,
        }
    )  # fmt: skip

    def __init__(
        self, device_id: str, *, slot: str, platform_id: int, backend: Any = None,
        reenumerate_timeout: float = 60.0,
    ) -> None:  # fmt: skip
        self.device_id = device_id.lower()
        self.slot = slot
        self.platform_id = platform_id
        self.backend = backend
        self.timeout = reenumerate_timeout
        self.probe = ProbeInfo("usb", self.device_id, f"Particle device {self.device_id} on USB")
        self._control: ParticleDevice | None = None
        self._dfu: DfuSeDevice | None = None

    # -- errors and modes ------------------------------------------------------------

    def _guard(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except ProgrammerError:
            raise
        except DeviceGone as exc:
            raise DeviceNotAnswering(f"{what}: {exc}", slot=self.slot) from None
        except UsbPermissionDenied as exc:
            raise ProbeNotFound(f"{what}: {exc}", slot=self.slot) from None
        except UsbError as exc:
            raise ToolFailed(f"{what}: {exc}", slot=self.slot) from None

    def connect(self) -> None:
        """Find the device in either mode (DFU first: a blank unit only has the bootloader)."""
        dev = find_device(self.device_id, self.backend, UsbMode.DFU)
        if dev is not None:
            self._check_platform(dev)
            self._dfu = DfuSeDevice(dev, self.device_id)
            return
        dev = find_device(self.device_id, self.backend, UsbMode.NORMAL)
        if dev is None:
            raise ProbeNotFound(
                f"no Particle device {self.device_id} on USB (unplugged? udev rules?)",
                slot=self.slot,
            )
        self._check_platform(dev)
        self._control = ParticleDevice(dev, self.device_id, backend=self.backend)
        self._control.service.reset(0)

    def _check_platform(self, dev: Any) -> None:
        product = product_for(int(dev.idVendor), int(dev.idProduct))
        if product is not None and product.platform_id != self.platform_id:
            raise ProgrammerError(
                f"device {self.device_id} is platform {product.platform_id} "
                f"({platform_name(product.platform_id)}), the slot expects {self.platform_id} "
                f"({platform_name(self.platform_id)}); nothing was written",
                slot=self.slot,
            )

    def _normal(self) -> ParticleDevice:
        if self._control is not None:
            return self._control
        if self._dfu is not None:
            self._dfu.leave()
            self._dfu = None
        dev = wait_for_device(self.device_id, backend=self.backend, mode=UsbMode.NORMAL,
                              timeout=self.timeout)  # fmt: skip
        self._control = ParticleDevice(dev, self.device_id, backend=self.backend)
        self._control.service.reset(0)
        return self._control

    def _dfu_mode(self) -> DfuSeDevice:
        if self._dfu is not None:
            return self._dfu
        control = self._normal()
        dev = control.enter_dfu(timeout=self.timeout)
        self._control = None
        self._dfu = DfuSeDevice(dev, self.device_id)
        return self._dfu

    # -- the Programmer protocol ------------------------------------------------------

    def read_device_id(self) -> DeviceId:
        def read() -> DeviceId:
            if self._control is not None:
                return self._control.get_device_id()
            try:
                return DeviceId.parse(self.device_id)
            except InvalidIdentifier as exc:
                raise ToolFailed(str(exc), slot=self.slot) from None

        return self._guard("read device ID", read)

    def read_memory(self, address: int, length: int) -> bytes:
        def read() -> bytes:
            try:
                return self._dfu_mode().read(0, address, length)
            except ReadOnlyRegion as exc:
                raise ProgrammerError(str(exc), slot=self.slot) from None

        return self._guard(f"read {length} bytes at {address:#010x}", read)

    def read_modules(self) -> list[ModuleOnDevice]:
        if self._dfu is not None:
            return scan_modules(self.read_memory, self.platform_id)
        modules = self._guard("module info", lambda: self._normal().get_module_info())
        return [self._on_device(m) for m in modules]

    def _on_device(self, m: FirmwareModule) -> ModuleOnDevice:
        """Module info has no address: it follows from the kind of module (spec §2.1, §2.4)."""
        address = 0
        candidates = [
            r for r in flash_regions(self.platform_id)
            if r.function == m.type and r.index in (None, m.index)
        ]  # fmt: skip
        if candidates:
            address = candidates[0].start
        if m.type == ModuleFunction.SYSTEM_PART and self.platform_id in NRF52840_PLATFORM_IDS:
            address = GEN3_SYSTEM_PART_FROM_6_2 if m.version >= 6200 else GEN3_SYSTEM_PART
        sha = m.hash.hex() if m.hash else None
        return ModuleOnDevice(m.type, m.index, m.version, address, m.size, self.platform_id,
                              sha, m.valid)  # fmt: skip

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        started = time.perf_counter()
        function = _module_function(data)
        if function in _CONTROL_FUNCTIONS:
            self._guard("firmware update", lambda: self._update(data))
            how = "control requests 250/253/251"
        else:
            self._guard(f"DFU write at {address:#010x}", lambda: self._dfu_write(address, data))
            how = "DfuSe alt 0"
        verified = False
        if verify:
            if not self.verify(address, data):
                raise VerifyFailed(f"read-back at {address:#010x} differs", slot=self.slot)
            verified = True
        return WriteResult(address, len(data), time.perf_counter() - started, verified, how)

    def _update(self, data: bytes) -> None:
        control = self._normal()
        control.update_firmware(data, wait=True, timeout=240.0)

    def _dfu_write(self, address: int, data: bytes) -> None:
        try:
            dfu = self._dfu_mode()
            if address == USER_PART_GEN3_ADDRESS and self.platform_id in NRF52840_PLATFORM_IDS:
                # particle-cli's "invalidate-128k-user-part" step (spec §2.1): an old 128 KB
                # user part at 0xD4000 would take precedence over the new one at 0xB4000.
                dfu.write(0, USER_PART_COMPAT_ADDRESS, b"\xff" * 4096)
            dfu.write(0, address, data)
        except ReadOnlyRegion as exc:
            raise ProgrammerError(str(exc), slot=self.slot) from None

    def verify(self, address: int, data: bytes) -> bool:
        if _module_function(data) in _CONTROL_FUNCTIONS:
            module = parse_module(data)
            for m in self._guard("module info", lambda: self._normal().get_module_info()):
                if (m.type, m.index) == (module.function, module.index):
                    return m.version == module.version and m.valid
            return False
        return self.read_memory(address, len(data)) == data

    def reset(self) -> None:
        def reset() -> None:
            if self._dfu is not None:
                self._normal()
            elif self._control is not None:
                self._control.reset(wait=True, timeout=self.timeout)

        self._guard("reset", reset)

    def set_setup_done(self, done: bool = True) -> bool:
        return self._guard("setup done", lambda: self._normal().set_setup_done(done))

    def get_setup_done(self) -> bool:
        return self._guard("setup done", lambda: self._normal().is_setup_done())

    def update_ncp(self, data: bytes) -> WriteResult:
        """Write an ESP32 NCP module (Tracker) and check the device reports its version."""
        return self.write_module(0, data, verify=True)

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
        if self._dfu is not None:
            self._dfu.close()
        self._control = self._dfu = None


def open_usb_programmer(
    device_id: str, *, slot: str, platform_id: int, backend: Any = None
) -> UsbProgrammer:
    """Connect to ``device_id`` on ``backend`` (``None`` = libusb)."""
    programmer = UsbProgrammer(device_id, slot=slot, platform_id=platform_id, backend=backend)
    programmer._guard("connect", programmer.connect)
    return programmer


def backend_for(request: OpenRequest) -> Any:
    """libusb, or the virtual bus of the tray in option ``tray``."""
    folder = request.options.get("tray")
    if not folder:
        return None
    from trayline.usb.virtual.backend import VirtualBackend

    text = request.options.get("time_scale")
    try:
        scale = None if text is None else float(text)
    except ValueError:
        scale = -1.0
    if scale is not None and not scale >= 0:
        raise BadBackendOption(f"{request.slot}: option time_scale={text!r} must be a number >= 0")
    try:
        return VirtualBackend.from_tray(folder, time_scale=scale)
    except ValueError as exc:  # TRAYLINE_VIRTUAL_TIME_SCALE is not a number
        raise BadBackendOption(f"{request.slot}: {exc}") from None


def check_platform_option(request: OpenRequest, backend: str) -> None:
    """Refuse a platform with no Particle USB product ID before touching USB (exit 2)."""
    if request.platform_id not in NORMAL_PIDS:
        known = ", ".join(f"{p} ({platform_name(p)})" for p in sorted(NORMAL_PIDS))
        raise BadBackendOption(
            f"{request.slot}: backend {backend!r} knows no USB IDs for platform "
            f"{request.platform_id}; it drives {known}"
        )


def open_usb(request: OpenRequest) -> Programmer:
    check_platform_option(request, "usb")
    if not request.probe_id.strip():
        raise ProbeNotFound("the usb backend needs the device ID as probe", slot=request.slot)
    backend = backend_for(request)
    return open_usb_programmer(
        request.probe_id.strip(), slot=request.slot, platform_id=request.platform_id,
        backend=backend,
    )  # fmt: skip


def list_usb_probes() -> list[ProbeInfo]:
    try:
        devices = list_devices(None)
    except UsbError as exc:
        raise ToolMissing(str(exc)) from None
    return [
        ProbeInfo("usb", d.device_id or "", f"{d.platform} ({d.mode.value}) {d.note}".strip())
        for d in devices
    ]


def _dfu_util_backends() -> tuple[Backend, ...]:
    from trayline.programmers.dfu_util import BACKENDS as DFU_UTIL

    return DFU_UTIL


BACKENDS: tuple[Backend, ...] = (
    Backend(
        name="usb",
        open=open_usb,
        list_probes=list_usb_probes,
        capabilities=UsbProgrammer.capabilities,
        description="Particle USB control requests + DfuSe through pyusb (no particle CLI)",
        options=_OPTIONS,
    ),
    *_dfu_util_backends(),
)

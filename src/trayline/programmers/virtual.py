"""The ``virtual`` backend: a probe wired to one device of a virtual tray.

It is a :class:`~trayline.programmers.memory_backend.MemoryProgrammer` like the
OpenOCD or nrfjprog backends — device ID from the FICR/UID register, module
list by reading flash (the Gen 3 SoftDevice from its info structure, as
:func:`~trayline.programmers.scan.scan_modules` reads it for every memory
backend), read-back verify, protection policy — whose four
primitives go to a :class:`trayline.virtual.swd.DebugPort` instead of a tool.
So the station's code path is the real one; only the wire is simulated, with
the device's faults and the timing model of the chosen link.

Probe ID = the virtual device's ID. Options (``OpenRequest.options``):

``tray``        the tray folder (``--virtual DIR``); required.
``link``        timing row of :data:`trayline.virtual.timing.LINKS`
                (default ``openocd-cmsis-dap``: the guide's Particle Debugger).
``time_scale``  real seconds per simulated second (default
                ``TRAYLINE_VIRTUAL_TIME_SCALE``, else 1; ``0`` = no waiting).
``sync``        ``1`` (default) fsyncs each saved image; ``0`` only renames
                atomically (still safe between processes; for benchmarks).

Faults: ``swd_connect_failures`` → :class:`TargetNotHalted` from ``open`` (the
caller retries), ``never_answers`` → :class:`DeviceNotAnswering`,
``protected`` → :class:`ProtectedDevice` naming the slot with nothing erased
(unless the slot policy allows unlocking: then a mass erase, as
``nrfjprog --recover`` would), ``flip_bit_on_write`` → the read-back verify
raises :class:`VerifyFailed`.

Beyond SWD, the backend also offers the setup-done flag
(:class:`~trayline.programmers.base.SupportsSetupDone`) the way ``particle usb
setup-done`` reaches it on a real unit, so a virtual line can run the whole
sequence with one backend. The simulated device time spent is on
:attr:`VirtualProgrammer.simulated_seconds` and in each ``WriteResult.detail``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, Unpack

from trayline.programmers.base import (
    Capability,
    DeviceNotAnswering,
    ProbeInfo,
    ProbeNotFound,
    ProgrammerError,
    ProtectedDevice,
    TargetNotHalted,
    ToolFailed,
    WriteResult,
)
from trayline.programmers.memory_backend import SWD_CAPABILITIES, MemoryProgrammer
from trayline.programmers.opening import SlotArgs, slot_args
from trayline.programmers.registry import Backend, BadBackendOption, OpenRequest
from trayline.virtual.errors import (
    ConnectFailed,
    DeviceProtected,
    FlashRangeError,
    NoResponse,
    UnmappedAddress,
    VirtualDeviceError,
)
from trayline.virtual.records import TrayFileError
from trayline.virtual.swd import DebugPort
from trayline.virtual.timing import DEFAULT_LINK, LINKS, SimClock, time_scale_from_env
from trayline.virtual.tray import Tray

__all__ = ["BACKENDS", "VirtualProgrammer", "list_probes", "open_virtual"]

_OPTIONS = frozenset({"tray", "link", "time_scale", "sync"})
T = TypeVar("T")


class VirtualProgrammer(MemoryProgrammer):
    """An open SWD session to one virtual device."""

    name = "virtual"
    capabilities = SWD_CAPABILITIES | {Capability.SETUP_DONE}

    def __init__(self, probe: ProbeInfo, *, port: DebugPort, **slot: Unpack[SlotArgs]) -> None:
        super().__init__(probe, **slot)
        self.port = port

    @property
    def simulated_seconds(self) -> float:
        """Device time the session has cost on its link (whatever the time scale)."""
        return self.port.clock.simulated

    def _call(self, action: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except DeviceProtected as exc:
            raise ProtectedDevice(f"{exc}; nothing was erased", slot=self.slot) from None
        except NoResponse as exc:
            raise DeviceNotAnswering(str(exc), slot=self.slot) from None
        except ConnectFailed as exc:
            raise TargetNotHalted(str(exc), slot=self.slot) from None
        except (FlashRangeError, UnmappedAddress) as exc:
            raise ProgrammerError(f"{action}: {exc}", slot=self.slot) from None
        except (VirtualDeviceError, TrayFileError) as exc:
            raise ToolFailed(f"{action}: {exc}", slot=self.slot) from None

    def connect(self) -> None:
        self._guarded(lambda: self._call("connect", self.port.connect))

    def _read(self, address: int, length: int) -> bytes:
        return self._call("read", lambda: self.port.read(address, length))

    def _write(self, address: int, path: Path, data: bytes, verify: bool) -> bool:
        self._call("write", lambda: self.port.program(address, data))
        return False  # never tool-verified: the base class reads back and compares

    def _reset(self) -> None:
        self._call("reset", self.port.reset)

    def _recover(self) -> None:
        self._call("recover", self.port.mass_erase)

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        before = self.simulated_seconds
        result = super().write_module(address, data, verify=verify)
        spent = self.simulated_seconds - before
        return WriteResult(
            address=result.address,
            bytes_written=result.bytes_written,
            seconds=result.seconds,
            verified=result.verified,
            detail=f"virtual {self.probe.probe_id} via {self.port.timing.link.name}: "
            f"{spent:.3f} s simulated",
        )

    def set_setup_done(self, done: bool = True) -> bool:
        with self.port.tray.session(self.port.device_id) as device:
            return device.set_setup_done(done)

    def get_setup_done(self) -> bool:
        return self.port.device().setup_done


def _time_scale(request: OpenRequest) -> float:
    text = request.options.get("time_scale")
    if text is None:
        try:
            return time_scale_from_env()
        except ValueError as exc:
            raise BadBackendOption(f"{request.slot}: {exc}") from None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise BadBackendOption(f"{request.slot}: option time_scale={text!r} must be a number >= 0")
    return value


def open_virtual(request: OpenRequest) -> VirtualProgrammer:
    """Connect to the virtual device ``request.probe_id`` of the tray in option ``tray``."""
    folder = request.options.get("tray")
    if not folder:
        raise BadBackendOption(f"{request.slot}: the virtual backend needs option tray=DIR")
    link = request.option("link", DEFAULT_LINK)
    if link not in LINKS:
        raise BadBackendOption(
            f"{request.slot}: option link={link!r} is not one of {', '.join(sorted(LINKS))}"
        )
    sync = request.option("sync", "1")
    if sync not in ("0", "1"):
        raise BadBackendOption(f"{request.slot}: option sync={sync!r} must be 0 or 1")
    tray = Tray(folder, sync=sync == "1")
    ids = tray.device_ids()
    wanted = request.probe_id.strip().lower()
    if not wanted and len(ids) == 1:
        wanted = ids[0]
    if wanted not in ids:
        raise ProbeNotFound(
            f"no virtual device {request.probe_id!r} in tray {folder}", slot=request.slot
        )
    port = DebugPort(tray, wanted, link=link, clock=SimClock(_time_scale(request)))
    if port.timing.chip.mcu.lower()[:5] != ("nrf52" if request.platform_id != 10 else "stm32"):
        raise TargetNotHalted(
            f"the slot expects platform {request.platform_id} but the target is a "
            f"{port.timing.chip.mcu} (device {wanted})",
            slot=request.slot,
        )
    probe = ProbeInfo("virtual", wanted, f"virtual {tray.record(wanted).identity.sku}", None)
    programmer = VirtualProgrammer(probe, port=port, **slot_args(request))
    programmer.connect()
    return programmer


def list_probes(folder: Path | str | None = None) -> list[ProbeInfo]:
    """One probe per device of the tray in ``folder`` (``[]`` without a folder)."""
    if folder is None:
        return []
    tray = Tray(folder)
    ports = tray.ports()
    return [
        ProbeInfo(
            "virtual",
            record.device_id,
            f"virtual {record.identity.sku} {record.identity.serial_number}",
            ports.get(record.device_id),
        )
        for record in tray.records()
    ]


BACKENDS = (
    Backend(
        name="virtual",
        open=open_virtual,
        list_probes=list_probes,
        capabilities=VirtualProgrammer.capabilities,
        description="a device of a virtual tray (trayline virtual tray), with faults and timing",
        options=_OPTIONS,
    ),
)

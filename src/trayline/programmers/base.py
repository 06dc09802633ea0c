"""The one protocol every programmer speaks, whatever sits behind it.

A station slot holds a probe (a Particle Debugger, a J-Link, an ST-LINK, a USB
cable) wired to one device. Whether the bytes travel through OpenOCD, nrfjprog,
JLinkExe, pyOCD's Python API, Particle's CLI, a DAPLink drive, STM32CubeProgrammer,
Particle's USB control requests or a :mod:`trayline.virtual` device, the station
asks the same questions: which device is this (read from silicon), what modules
does it hold, write this module at its address, verify it, reset. Backends differ
in what they *can* do — a drag-and-drop drive cannot read memory back, the
Particle CLI cannot read raw flash — so each declares its :class:`Capability` set
and the flashing service plans around it instead of guessing.

The protocol is synchronous on purpose: every real backend is either a blocking
subprocess or pyOCD's blocking API. The station runs one worker thread per slot,
so a slow or hung probe blocks only its own slot.

Errors are typed so the station can tell an operator what to do: a missing probe
is a wiring problem, a protected chip is a policy decision (never unlocked unless
the slot allows it), a verify failure means the unit must not be marked flashed.
Every message names the slot or probe it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

from trayline.core.ids import DeviceId

__all__ = [
    "Capability",
    "DeviceNotAnswering",
    "ModuleOnDevice",
    "ProbeInfo",
    "ProbeNotFound",
    "Programmer",
    "ProgrammerError",
    "ProtectedDevice",
    "SeveralProbes",
    "SlotPolicy",
    "SupportsSetupDone",
    "TargetNotHalted",
    "ToolFailed",
    "ToolMissing",
    "ToolTimeout",
    "VerifyFailed",
    "WriteResult",
]


class Capability(Enum):
    """What a backend can do; the flashing service plans with these."""

    READ_DEVICE_ID = "read-device-id"
    """The device ID comes from silicon (FICR / STM32 UID) or the device itself."""
    READ_MEMORY = "read-memory"
    """Arbitrary internal flash can be read (so modules can be found and verified by read-back)."""
    READ_MODULES = "read-modules"
    """The backend can list the modules on the device (by reading memory or by asking it)."""
    WRITE_MODULE = "write-module"
    """A module binary can be written at its address."""
    VERIFY = "verify"
    """Written bytes can be checked (read-back compare or the tool's own verify)."""
    RESET = "reset"
    SETUP_DONE = "setup-done"
    """The Gen 3 setup-done flag can be set (USB only; SWD cannot reach the DCT)."""
    NCP_UPDATE = "ncp-update"
    """The Tracker's ESP32 NCP can be updated (USB control requests only)."""


@dataclass(frozen=True, slots=True)
class ProbeInfo:
    """A probe or port a backend can see: enough for an operator to tell two apart."""

    backend: str
    probe_id: str
    """Probe serial (J-Link S/N, DAPLink unique ID), USB device ID, or a virtual device's ID."""
    description: str = ""
    port: str | None = None
    """A filesystem path where one exists: the serial port, the DAPLink drive's mount point."""


@dataclass(frozen=True, slots=True)
class ModuleOnDevice:
    """A module found on a device: where it is and what its prefix says.

    ``sha256`` is the SHA-256 field from the module's suffix (what Device OS
    reports for the user part, and what ``core.modules.Module.sha256`` parses
    from bytes read back) — comparable with a bundle manifest's
    ``module_sha256``; ``None`` when the backend cannot know it.
    ``valid`` is False when the prefix was found but the CRC or SHA check failed
    (a half-written module), so the planner rewrites it.
    """

    function: int
    index: int
    version: int
    address: int
    size: int
    platform_id: int
    sha256: str | None = None
    valid: bool = True

    @property
    def key(self) -> tuple[int, int]:
        """``(function, index)``, as a manifest entry's ``key``."""
        return (self.function, self.index)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write did, for the unit's firmware record."""

    address: int
    bytes_written: int
    seconds: float
    verified: bool
    detail: str = ""


class ProgrammerError(Exception):
    """A programmer could not do what was asked; ``slot`` names where, for the operator."""

    exit_code = 6

    def __init__(self, message: str, *, slot: str | None = None, transcript: str = "") -> None:
        self.slot = slot
        self.transcript = transcript
        super().__init__(f"{slot}: {message}" if slot else message)


class ToolMissing(ProgrammerError):
    """The external program (openocd, nrfjprog, JLinkExe, …) is not installed or not on PATH."""


class ProbeNotFound(ProgrammerError):
    """No probe answers (unplugged, wrong serial, udev permissions)."""


class SeveralProbes(ProgrammerError):
    """More than one probe is attached and none was named."""


class TargetNotHalted(ProgrammerError):
    """The probe is there but the target did not halt or connect (DFU mode, power, wiring)."""


class DeviceNotAnswering(ProgrammerError):
    """The device does not answer at all (no power, dead console, USB gone)."""


class ProtectedDevice(ProgrammerError):
    """APPROTECT / readout protection is on; nothing was erased (unlocking is a slot policy)."""


class VerifyFailed(ProgrammerError):
    """What was read back differs from what was written: the unit is not flashed."""


class ToolTimeout(ProgrammerError):
    """The external program did not finish in time and was killed."""


class ToolFailed(ProgrammerError):
    """The external program failed in a way none of the above names; its output is kept."""


@runtime_checkable
class Programmer(Protocol):
    """One open connection to one device through one probe.

    Use as a context manager: ``with backend.open(probe) as prog: ...``; a
    backend's ``open`` connects (and fails with a :class:`ProgrammerError`
    subclass naming the probe) and ``close`` releases the probe even after an
    error. Addresses are the device's own (internal flash, or DFU alt-2 style
    ``0x80000000 +`` offsets where a backend supports external flash).
    """

    name: str
    capabilities: frozenset[Capability]
    probe: ProbeInfo

    def read_device_id(self) -> DeviceId: ...

    def read_memory(self, address: int, length: int) -> bytes: ...

    def read_modules(self) -> list[ModuleOnDevice]: ...

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult: ...

    def verify(self, address: int, data: bytes) -> bool: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Programmer: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class SupportsSetupDone(Protocol):
    """A programmer that can set the Gen 3 setup-done flag (USB, or a virtual device).

    ``set_setup_done`` returns True when the flag was written, False when the
    device does not need it (Device OS >= 4.0 answers NOT_SUPPORTED / always
    done; Electron has no such flag). SWD backends do not implement it: the flag
    lives in the DCT file on external flash, out of SWD's reach.
    """

    def set_setup_done(self, done: bool = True) -> bool: ...

    def get_setup_done(self) -> bool: ...


@dataclass(slots=True)
class SlotPolicy:
    """What a slot is allowed to do beyond writing modules (set in ``trayline.toml``)."""

    allow_unlock: bool = False
    """Recover / mass-erase a protected chip. Off by default: it destroys keys and the UICR."""
    extra: dict[str, str] = field(default_factory=dict)

"""One simulated Particle device: flash, ID registers, UICR, modes, setup-done flag, faults.

:class:`VirtualDevice` is the device as its silicon and Device OS behave, held
in memory and free of I/O: the tray (:mod:`trayline.virtual.tray`) loads it
from and saves it to a folder, the debug port (:mod:`trayline.virtual.swd`)
adds connect faults and the timing model, and the serial port
(:mod:`trayline.virtual.serial_port`) speaks for it on a pseudo-terminal.
Anything that drives a virtual device — the ``virtual`` programmer backend,
the virtual USB backend — goes through these methods, so the rules live in
one place:

* memory reads see internal flash, the FICR/UICR (nRF52840) or the unique ID
  (STM32); with ``protected`` on, every debug-port access is refused;
* writes follow NOR flash (:class:`~trayline.virtual.memory.Flash`); the
  ``flip_bit_on_write`` fault flips one bit of what was just written;
* the module list is parsed from flash (:func:`~trayline.virtual.scan.scan_modules`);
  Device OS version, test-firmware presence and the boot mode follow from it;
* :meth:`VirtualDevice.boot` applies Device OS's boot rules (no valid system
  part → DFU; a failed dependency → safe mode; Gen 3 below 4.0 with setup not
  done → listening mode; otherwise normal).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum

from trayline.core.modules import ModuleFunction
from trayline.core.platforms import GEN3_UICR_WORDS, NRF52840_PLATFORM_IDS
from trayline.core.versions import SemVer, device_os_for_system_module
from trayline.virtual.errors import DeviceProtected, UnmappedAddress
from trayline.virtual.identity import (
    FICR_BASE,
    DeviceIdentity,
    id_register_bytes,
)
from trayline.virtual.memory import Flash, geometry_for
from trayline.virtual.scan import FlashModule, scan_modules

__all__ = [
    "DCT_SETUP_DONE_OFFSET",
    "DCT_SIZE",
    "TESTFW_MARKER",
    "UICR_APPROTECT",
    "UICR_BASE",
    "DeviceMode",
    "DeviceState",
    "Faults",
    "VirtualDevice",
]

TESTFW_MARKER = b"trayline-testfw"
"""A valid user part containing these bytes is test firmware (TESTFW-PROTOCOL.md)."""

UICR_BASE = 0x10001000
UICR_SIZE = 0x1000
UICR_APPROTECT = 0x10001208
DCT_SIZE = 16 * 1024
"""Gen 3 DFU alt 1 ("DCT Flash", 16 KB): a view onto ``/sys/dct.bin`` (spec §2.2)."""
DCT_SETUP_DONE_OFFSET = 8134
_SETUP_DONE_FROM = SemVer(4, 0, 0)
_NO_FLAG = frozenset({0x00, 0xFF})


class DeviceMode(StrEnum):
    """What the RGB LED would say: the states a station cares about."""

    NORMAL = "normal"
    LISTENING = "listening"
    DFU = "dfu"
    SAFE = "safe"


@dataclass(slots=True)
class Faults:
    """Faults configured per device in ``devices.json`` (see docs/virtual.md).

    ``flip_bit_on_write``: ``True`` flips a bit on every write; an integer N
    flips one on each of the next N writes (counted in the device state, so it
    survives across processes). ``slow_console`` delays each console answer
    line by that many *real* seconds (not scaled: it exists to test host
    timeouts).
    """

    swd_connect_failures: int = 0
    flip_bit_on_write: bool | int = False
    never_answers: bool = False
    protected: bool = False
    slow_console: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "swd_connect_failures": self.swd_connect_failures,
            "flip_bit_on_write": self.flip_bit_on_write,
            "never_answers": self.never_answers,
            "protected": self.protected,
            "slow_console": self.slow_console,
        }


@dataclass(slots=True)
class DeviceState:
    """What the device itself changes and must remember across processes (``state.json``)."""

    mode: DeviceMode = DeviceMode.NORMAL
    uicr: dict[int, int] = field(default_factory=dict)
    """UICR words written (address → value); absent words read as erased 0xFFFFFFFF."""
    connect_failures_used: int = 0
    bit_flips_used: int = 0
    ncp_version: int | None = None
    """Tracker ESP32 NCP module version (7 = 0.0.7); ``None`` on platforms without an NCP."""
    claimed: bool = False
    boots: int = 0
    generation: int = 0
    """Bumped by every save that changed the device: readers' caches key on it."""


class VirtualDevice:
    """A simulated device of one SKU. Construct through :class:`~trayline.virtual.tray.Tray`."""

    def __init__(
        self,
        identity: DeviceIdentity,
        *,
        flash: Flash | None = None,
        dct: bytes | None = None,
        state: DeviceState | None = None,
        faults: Faults | None = None,
        readings: dict[str, object] | None = None,
    ) -> None:
        self.identity = identity
        self.geometry = geometry_for(identity.platform_id)
        self.flash = flash if flash is not None else Flash(self.geometry)
        self.dct = bytearray(dct if dct is not None else b"\xff" * DCT_SIZE)
        self.state = state if state is not None else DeviceState()
        self.faults = faults if faults is not None else Faults()
        self.readings: dict[str, object] = dict(readings or {})
        self._modules: list[FlashModule] | None = None

    def copy(self) -> VirtualDevice:
        """An independent copy (flash, DCT, state, faults, readings, parsed module list)."""
        twin = VirtualDevice(
            self.identity,
            flash=Flash(self.geometry, self.flash.image()),
            dct=bytes(self.dct),
            state=replace(self.state, uicr=dict(self.state.uicr)),
            faults=replace(self.faults),
            readings=dict(self.readings),
        )
        twin._modules = None if self._modules is None else list(self._modules)
        return twin

    # -- who it is -------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @property
    def platform_id(self) -> int:
        return self.identity.platform_id

    @property
    def is_gen3(self) -> bool:
        return self.platform_id in NRF52840_PLATFORM_IDS

    @property
    def mode(self) -> DeviceMode:
        return self.state.mode

    def __repr__(self) -> str:
        return f"VirtualDevice({self.device_id}, {self.identity.sku}, {self.mode})"

    # -- the debug port's view of memory ----------------------------------------------

    def check_access(self) -> None:
        """Raise :class:`DeviceProtected` when APPROTECT / RDP closes the debug port."""
        if self.faults.protected:
            what = "APPROTECT" if self.is_gen3 else "readout protection (RDP)"
            raise DeviceProtected(
                f"device {self.device_id}: {what} is on; the debug port refuses memory access "
                f"(only a mass erase can open it)"
            )

    def read_memory(self, address: int, length: int) -> bytes:
        """Read through the debug port: internal flash, FICR/UICR or the STM32 unique ID."""
        self.check_access()
        if self.geometry.contains(address, length):
            return self.flash.read(address, length)
        reg_address, reg = id_register_bytes(self.platform_id, self.device_id)
        if self.is_gen3 and address >= FICR_BASE and address + length <= FICR_BASE + 0x1000:
            page = bytearray(b"\xff" * 0x1000)
            page[reg_address - FICR_BASE : reg_address - FICR_BASE + len(reg)] = reg
            return bytes(page[address - FICR_BASE : address - FICR_BASE + length])
        if self.is_gen3 and address >= UICR_BASE and address + length <= UICR_BASE + UICR_SIZE:
            return self._uicr_bytes()[address - UICR_BASE : address - UICR_BASE + length]
        if not self.is_gen3 and reg_address <= address and address + length <= reg_address + 12:
            return reg[address - reg_address : address - reg_address + length]
        raise UnmappedAddress(
            f"device {self.device_id}: no memory answers at {address:#010x} ({length} bytes)"
        )

    def _uicr_bytes(self) -> bytes:
        page = bytearray(b"\xff" * UICR_SIZE)
        for word_address, value in self.state.uicr.items():
            offset = word_address - UICR_BASE
            page[offset : offset + 4] = value.to_bytes(4, "little")
        return bytes(page)

    def write_uicr(self, address: int, value: int) -> None:
        """Program one UICR word (NOR rules: only 1 → 0 without an erase)."""
        self.check_access()
        if not self.is_gen3 or not UICR_BASE <= address < UICR_BASE + UICR_SIZE or address % 4:
            raise UnmappedAddress(f"device {self.device_id}: {address:#010x} is not a UICR word")
        self.state.uicr[address] = self.state.uicr.get(address, 0xFFFFFFFF) & value

    def write_factory_uicr(self) -> None:
        """The UICR words Particle's restore images carry (bootloader address, reset pin)."""
        if self.is_gen3:
            for address, value in GEN3_UICR_WORDS.items():
                self.write_uicr(address, value)

    # -- erase and write ----------------------------------------------------------------

    def erase(self, start: int, end: int) -> list[tuple[int, int]]:
        """Erase the pages/sectors covering ``[start, end)``; returns the units erased."""
        self.check_access()
        self._modules = None
        return self.flash.erase(start, end)

    def write(self, address: int, data: bytes) -> int:
        """Program ``data`` (no erase); returns the bits that could not be set (0 = clean).

        With the ``flip_bit_on_write`` fault one bit of the written range ends up
        wrong, at a position derived from the device ID and address (repeatable).
        """
        self.check_access()
        self._modules = None
        unset = self.flash.write(address, data)
        if data and self._take_bit_flip():
            digest = hashlib.sha256(f"{self.device_id}:{address}:{len(data)}".encode()).digest()
            bit = int.from_bytes(digest[:8], "little") % (len(data) * 8)
            self.flash.flip_bit(address + bit // 8, bit % 8)
        return unset

    def _take_bit_flip(self) -> bool:
        fault = self.faults.flip_bit_on_write
        if fault is True:
            return True
        if isinstance(fault, bool) or self.state.bit_flips_used >= fault:
            return False
        self.state.bit_flips_used += 1
        return True

    def mass_erase(self) -> None:
        """CTRL-AP ERASEALL / RDP regression: everything erased, protection off.

        Destroys flash and UICR (a recover wipes them too), so callers only do
        this when the slot policy explicitly allows it.
        """
        self.flash.mass_erase()
        self.state.uicr.clear()
        self.faults.protected = False
        self._modules = None

    # -- what Device OS sees -------------------------------------------------------------

    def modules(self) -> list[FlashModule]:
        """Modules parsed from flash now (cached until the next erase or write)."""
        if self._modules is None:
            self._modules = scan_modules(self.flash, self.platform_id)
        return list(self._modules)

    def system_module(self) -> FlashModule | None:
        """The system part whose version names the Device OS release (index 1)."""
        for module in self.modules():
            if module.function == ModuleFunction.SYSTEM_PART and module.index == 1:
                return module
        return None

    def device_os(self) -> SemVer | None:
        """The Device OS release of the system part in flash; ``None`` if there is none."""
        system = self.system_module()
        if system is None or not system.valid:
            return None
        known = device_os_for_system_module(system.version)
        if known is not None:
            return known
        return SemVer(system.version // 1000, (system.version % 1000) // 100, 0)

    def user_part(self) -> FlashModule | None:
        users = [m for m in self.modules() if m.function == ModuleFunction.USER_PART and m.valid]
        return users[-1] if users else None

    def runs_test_firmware(self) -> bool:
        """A valid user part whose bytes carry ``trayline-testfw`` (TESTFW-PROTOCOL.md)."""
        user = self.user_part()
        if user is None:
            return False
        return TESTFW_MARKER in self.flash.read(user.address, user.size)

    def unmet_dependencies(self) -> list[str]:
        """Dependencies no installed module satisfies, as Device OS checks them (§1.7)."""
        installed = {(m.function, m.index): m.version for m in self.modules() if m.valid}
        if self.state.ncp_version is not None:
            installed[(ModuleFunction.NCP_FIRMWARE, 0)] = self.state.ncp_version
        problems = []
        for module in self.modules():
            for function, index, version in module.dependencies:
                if installed.get((function, index), -1) < version:
                    problems.append(f"{function}/{index} >= {version} for {module.function}")
        return problems

    # -- setup done and modes ----------------------------------------------------------

    def setup_done_applies(self) -> bool:
        """Gen 3 below Device OS 4.0 keeps the flag in the DCT; later releases ignore it."""
        release = self.device_os()
        return self.is_gen3 and (release is None or release < _SETUP_DONE_FROM)

    @property
    def setup_done(self) -> bool:
        """As ``IsDeviceSetupDone`` answers: always true on 4.0+, the DCT byte below."""
        if not self.is_gen3:
            return True
        if not self.setup_done_applies():
            return True
        return self.dct[DCT_SETUP_DONE_OFFSET] not in _NO_FLAG

    def set_setup_done(self, done: bool = True) -> bool:
        """Write the flag; returns False where the device has none (Electron, Gen 3 >= 4.0)."""
        if not self.is_gen3 or not self.setup_done_applies():
            return False
        self.dct[DCT_SETUP_DONE_OFFSET] = 0x01 if done else 0xFF
        return True

    def boot_mode(self) -> DeviceMode:
        """The mode Device OS would come up in with this flash and DCT."""
        system = [m for m in self.modules() if m.function == ModuleFunction.SYSTEM_PART]
        if not system or not all(m.valid for m in system):
            return DeviceMode.DFU
        if self.unmet_dependencies():
            return DeviceMode.SAFE
        if self.runs_test_firmware():
            # The test firmware runs in SYSTEM_MODE(MANUAL): it never starts the
            # network, so the "setup not done → listening" rule does not fire.
            return DeviceMode.NORMAL
        if self.is_gen3 and not self.setup_done:
            return DeviceMode.LISTENING
        return DeviceMode.NORMAL

    def boot(self) -> DeviceMode:
        """Reset: come up in :meth:`boot_mode`; returns it."""
        self.state.mode = self.boot_mode()
        self.state.boots += 1
        return self.state.mode

    def enter_mode(self, mode: DeviceMode) -> None:
        """Switch mode as a control request or button would (DFU, listening, safe, normal)."""
        self.state.mode = mode

"""Particle's own CLI over USB (``particle``): identify, inspect, flash, setup-done, DFU.

The guide's no-debugger route: a USB cable per unit and Particle's Node CLI.
It reaches what SWD cannot — the Gen 3 setup-done flag and the Tracker NCP —
but cannot read raw flash, so this backend declares no ``READ_MEMORY`` and
lists modules from what the device itself reports (``particle serial
inspect``). Command lines (spec §10.1), colour codes stripped before parsing:

==================  ================================================================
probes              ``particle usb list`` (``<name> [<id>] (<Platform>[, DFU][, MODE])``)
identity            ``particle identify --port PORT`` (``Your device id is …``,
                    ``Your IMEI is …``, ``Your ICCID is …``,
                    ``Your system firmware version is …``)
modules             ``particle serial inspect --port PORT`` (``  <Type> module #<i> -
                    version <v>``, ``Integrity: PASS|FAIL``, ``UUID:`` for the user part)
write               ``particle flash --local FILE`` (4 minutes; the CLI picks DFU or
                    control requests per module itself)
reset / setup done  ``particle usb reset ID`` / ``particle usb setup-done [--reset] ID``
DFU                 ``particle usb dfu ID``
==================  ================================================================

The probe ID is the device ID; the ``port`` option names its serial port (for
``identify``/``inspect``). ``verify`` is not a byte read-back: it asks the device
for its module list and checks that the module written is there with the same
version, passes the device's own integrity check and, for the user part, has
the same SHA-256 — what the device will run.

UNCONFIRMED: ``particle flash --local`` has no device selector in the CLI
versions examined, so a write refuses to run while more than one Particle device
is on USB (:class:`SeveralProbes`); exact wording of the CLI's error messages
(matched loosely).

Options: ``port``, ``tool``, ``timeout`` (seconds per flash, default 240), ``record``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Unpack

from trayline.core.ids import DeviceId, InvalidIdentifier
from trayline.core.modules import ModuleError, ModuleFunction, parse_module
from trayline.core.platforms import flash_regions
from trayline.programmers.base import (
    Capability,
    DeviceNotAnswering,
    ModuleOnDevice,
    ProbeInfo,
    ProbeNotFound,
    ProgrammerError,
    ProtectedDevice,
    SeveralProbes,
    ToolFailed,
    VerifyFailed,
    WriteResult,
)
from trayline.programmers.lifecycle import KeepsWorkdir
from trayline.programmers.opening import OnSlot, SlotArgs, slot_args
from trayline.programmers.registry import Backend, OpenRequest
from trayline.programmers.tool import (
    TOOL_OPTIONS,
    ErrorPattern,
    Runner,
    Tool,
    ToolRun,
    ToolSpec,
    check_run,
    tool_for,
)

__all__ = [
    "BACKENDS",
    "PARTICLE_CLI",
    "ParticleCliProgrammer",
    "open_particle_cli",
    "parse_identify",
    "parse_inspect",
    "parse_usb_list",
]

PARTICLE_CLI = ToolSpec(
    name="Particle CLI",
    executables=("particle",),
    env_var="TRAYLINE_PARTICLE_CLI",
    install_hint=(
        "Install it with 'npm install -g particle-cli' (or Particle's installer), "
        "or point TRAYLINE_PARTICLE_CLI at the particle executable."
    ),
)

CAPABILITIES = frozenset(
    {
        Capability.READ_DEVICE_ID,
        Capability.READ_MODULES,
        Capability.WRITE_MODULE,
        Capability.VERIFY,
        Capability.RESET,
        Capability.SETUP_DONE,
        Capability.NCP_UPDATE,
    }
)

ERRORS: tuple[ErrorPattern, ...] = (
    ErrorPattern.of(
        r"device protection|device is protected|protected device",
        ProtectedDevice,
        "the device is protected: {0}; nothing was changed",
    ),
    ErrorPattern.of(
        r"No devices? found|Device not found|Unable to find (the )?device|"
        r"No serial port identified|Could not identify device",
        ProbeNotFound,
        "device not found on USB: {0} (cable? powered?)",
    ),
    ErrorPattern.of(
        r"multiple devices|more than one device|Found \d+ devices",
        SeveralProbes,
        "several Particle devices on USB: {0}",
    ),
    ErrorPattern.of(
        r"timed? ?out|not responding|Unable to (connect|open)|Request (timeout|failed)",
        DeviceNotAnswering,
        "the device does not answer: {0}",
    ),
)

_ELECTRON = 10
_FLAG_GONE_MAJOR = 4
"""Device OS 4.0.0 dropped the setup-done flag (spec §2.7)."""

_FUNCTIONS = {
    "bootloader": ModuleFunction.BOOTLOADER,
    "system": ModuleFunction.SYSTEM_PART,
    "user": ModuleFunction.USER_PART,
    "radio stack": ModuleFunction.RADIO_STACK,
    "ncp": ModuleFunction.NCP_FIRMWARE,
    "monolithic": ModuleFunction.MONO_FIRMWARE,
    "asset": ModuleFunction.ASSET,
}
_MODULE_LINE = re.compile(r"^  ([A-Za-z][A-Za-z ]*?) module #(\d+) - version (\d+)\s*$")
_SIZE_LINE = re.compile(r"^\s+Size: (\d+) kB")
_UUID_LINE = re.compile(r"^\s+UUID: ([0-9A-Fa-f]{64})")
_INTEGRITY_LINE = re.compile(r"^\s+Integrity: (PASS|FAIL)")
_PLATFORM_LINE = re.compile(r"^Platform: (\d+)")
_USB_LINE = re.compile(r"^(.*?) \[([0-9a-fA-F]{24})\] \(([^)]*)\)\s*$", re.MULTILINE)
_IDENTIFY = {
    "device_id": re.compile(r"Your device id is\s+([0-9a-fA-F]{24})"),
    "imei": re.compile(r"Your IMEI is\s+(\d+)"),
    "iccid": re.compile(r"Your ICCID is\s+(\d+)"),
    "device_os": re.compile(r"Your system firmware version is\s+(\S+)"),
}


def parse_identify(output: str) -> dict[str, str]:
    """``device_id``, ``imei``, ``iccid``, ``device_os`` as ``particle identify`` printed them."""
    found: dict[str, str] = {}
    for key, pattern in _IDENTIFY.items():
        match = pattern.search(output)
        if match:
            found[key] = match.group(1).lower() if key == "device_id" else match.group(1)
    return found


def parse_usb_list(output: str) -> list[tuple[str, str, str]]:
    return [
        (m.group(1).strip(), m.group(2).lower(), m.group(3)) for m in _USB_LINE.finditer(output)
    ]


def _address(platform_id: int, function: int, index: int, version: int) -> int:
    """Where the module sits: the region table, system part split at 6.2.0 (spec §2.1)."""
    starts = [
        r.start for r in flash_regions(platform_id) if (r.function, r.index) == (function, index)
    ]
    if function == ModuleFunction.SYSTEM_PART and len(starts) == 2:
        return 0x00028000 if version >= 6200 else 0x00030000
    return starts[0] if starts else 0


@dataclass
class _Listed:
    """One module block of ``serial inspect`` while it is being read."""

    function: int
    index: int
    version: int
    size: int = 0
    sha256: str | None = None
    valid: bool = True


def _module_block(line: str) -> _Listed | None:
    match = _MODULE_LINE.match(line)
    if match is None:
        return None
    function = _FUNCTIONS.get(match.group(1).strip().lower(), -1)
    return _Listed(int(function), int(match.group(2)), int(match.group(3)))


def parse_inspect(output: str) -> list[ModuleOnDevice]:
    """Modules from ``particle serial inspect`` (dependency lines, indented deeper, are skipped)."""
    platform_id = 0
    blocks: list[_Listed] = []
    for line in output.splitlines():
        if m := _PLATFORM_LINE.match(line):
            platform_id = int(m.group(1))
        elif block := _module_block(line):
            blocks.append(block)
        elif blocks and (m := _SIZE_LINE.match(line)):
            blocks[-1].size = int(m.group(1)) * 1024
        elif blocks and (m := _UUID_LINE.match(line)):
            blocks[-1].sha256 = m.group(1).lower()
        elif blocks and (m := _INTEGRITY_LINE.match(line)):
            blocks[-1].valid = m.group(1) == "PASS"
    return [
        ModuleOnDevice(
            function=b.function,
            index=b.index,
            version=b.version,
            address=_address(platform_id, b.function, b.index, b.version),
            size=b.size,
            platform_id=platform_id,
            sha256=b.sha256,
            valid=b.valid,
        )
        for b in blocks
    ]


class ParticleCliProgrammer(OnSlot, KeepsWorkdir):
    """One Particle device on USB, reached through the ``particle`` CLI."""

    name = "particle-usb"
    capabilities = CAPABILITIES

    def __init__(
        self,
        probe: ProbeInfo,
        *,
        tool: Tool,
        flash_timeout: float = 240.0,
        **slot: Unpack[SlotArgs],
    ) -> None:
        super().__init__(probe, **slot)
        self.tool = tool
        self.flash_timeout = flash_timeout
        self.timeout = 30.0

    def _run(self, *args: str, timeout: float, success: str | None = None) -> ToolRun:
        run = self.tool.run(list(args), timeout=timeout)
        return check_run(
            run, ERRORS, slot=self.slot, tool="particle", success=success, flags=re.IGNORECASE
        )

    def _port(self) -> str:
        if not self.probe.port:
            raise ProgrammerError(
                f"particle-usb needs the serial port of device {self.probe.probe_id} "
                "(backend option port=/dev/ttyACM0)",
                slot=self.slot,
            )
        return self.probe.port

    def identify(self) -> dict[str, str]:
        """What ``particle identify`` says: device_id, imei, iccid, device_os (those printed)."""
        run = self._run("identify", "--port", self._port(), timeout=self.timeout)
        found = parse_identify(run.output)
        if "device_id" not in found:
            raise ToolFailed(
                "particle identify printed no device ID", slot=self.slot, transcript=run.transcript
            )
        return found

    def read_device_id(self) -> DeviceId:
        """From ``identify`` on the port, else the USB serial number ``usb list`` shows.

        Either way the ID comes from the device, never just from configuration.
        """
        if self.probe.port:
            return DeviceId.parse(self.identify()["device_id"])
        listed = parse_usb_list(self._run("usb", "list", timeout=self.timeout).output)
        if self.probe.probe_id not in [device_id for _, device_id, _ in listed]:
            raise ProbeNotFound(f"device {self.probe.probe_id} is not on USB", slot=self.slot)
        return DeviceId.parse(self.probe.probe_id)

    def read_memory(self, address: int, length: int) -> bytes:
        raise ProgrammerError(
            "the particle CLI cannot read raw memory; use an SWD backend for read-back",
            slot=self.slot,
        )

    def read_modules(self) -> list[ModuleOnDevice]:
        run = self._run("serial", "inspect", "--port", self._port(), timeout=self.timeout)
        modules = parse_inspect(run.output)
        if not modules:
            raise ToolFailed(
                "particle serial inspect listed no modules",
                slot=self.slot,
                transcript=run.transcript,
            )
        return modules

    def _only_device(self) -> None:
        """``flash --local`` has no device selector: exactly this device must be on USB."""
        listed = parse_usb_list(self._run("usb", "list", timeout=self.timeout).output)
        ids = [device_id for _, device_id, _ in listed]
        if self.probe.probe_id not in ids:
            raise ProbeNotFound(f"device {self.probe.probe_id} is not on USB", slot=self.slot)
        if len(ids) > 1:
            raise SeveralProbes(
                f"{len(ids)} Particle devices on USB ({', '.join(ids)}); particle flash --local "
                "cannot choose one: leave only this slot's device connected",
                slot=self.slot,
            )

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        try:
            module = parse_module(bytes(data))
        except ModuleError as exc:
            raise ProgrammerError(
                f"particle flash --local takes whole module files: {exc}", slot=self.slot
            ) from exc
        if module.start_address != address:
            raise ProgrammerError(
                f"module says it starts at {module.start_address:#010x}, asked to write it at "
                f"{address:#010x}",
                slot=self.slot,
            )
        self._only_device()
        path = self.workdir() / f"module-{address:08x}.bin"
        path.write_bytes(data)
        started = time.monotonic()
        self._run(
            "flash", "--local", str(path), timeout=self.flash_timeout, success=r"Flash success"
        )
        if verify and not self.verify(address, data):
            raise VerifyFailed(
                f"after flashing, the device does not report {module.label()} intact: "
                "the unit is not flashed",
                slot=self.slot,
            )
        return WriteResult(address, len(data), time.monotonic() - started, verify, "particle-usb")

    def verify(self, address: int, data: bytes) -> bool:
        module = parse_module(bytes(data))
        for found in self.read_modules():
            if (found.function, found.index) != module.key:
                continue
            same_sha = found.sha256 is None or found.sha256 == module.sha256
            return found.version == module.version and found.valid and same_sha
        return False

    def reset(self) -> None:
        self._run("usb", "reset", self.probe.probe_id, timeout=self.timeout)

    def _flag_not_needed(self) -> bool:
        """True when the device has no setup-done flag to write (Electron; Device OS >= 4.0)."""
        if self.platform_id == _ELECTRON:
            return True
        if not self.probe.port:
            return False  # cannot ask the version without a port: write the flag
        version = self.identify().get("device_os", "")
        major = version.split(".", 1)[0]
        return major.isdigit() and int(major) >= _FLAG_GONE_MAJOR

    def set_setup_done(self, done: bool = True) -> bool:
        """``particle usb setup-done [--reset] ID`` (spec §2.7); False when not needed."""
        if self._flag_not_needed():
            return False
        args = ["usb", "setup-done", *([] if done else ["--reset"]), self.probe.probe_id]
        self._run(*args, timeout=self.timeout)
        return True

    def get_setup_done(self) -> bool:
        """The CLI cannot read the flag; only "not needed" (always done) is known."""
        if self._flag_not_needed():
            return True
        raise ProgrammerError(
            "the particle CLI cannot read the setup-done flag (use the usb backend)",
            slot=self.slot,
        )

    def enter_dfu(self) -> None:
        """Put the device in DFU mode (blinking yellow), e.g. before SWD on another slot."""
        self._run("usb", "dfu", self.probe.probe_id, timeout=self.timeout)


def open_particle_cli(
    request: OpenRequest, *, runner: Runner | None = None
) -> ParticleCliProgrammer:
    """The registry's ``open``: the probe ID is the device ID (a port alone is accepted too)."""
    tool = tool_for(PARTICLE_CLI, request, runner)
    port = request.options.get("port")
    probe_id = request.probe_id
    if probe_id.startswith("/") or probe_id.upper().startswith("COM"):
        port, probe_id = probe_id, ""
    if probe_id:
        try:
            probe_id = DeviceId.parse(probe_id)
        except InvalidIdentifier as exc:
            raise ProbeNotFound(f"{exc}", slot=request.slot) from exc
    prog = ParticleCliProgrammer(
        ProbeInfo("particle-usb", probe_id, "Particle device on USB", port),
        **slot_args(request),
        tool=tool,
        flash_timeout=request.number("timeout", 240.0),
    )
    if not probe_id:
        device_id = prog.identify()["device_id"]
        prog.probe = ProbeInfo("particle-usb", device_id, "Particle device on USB", port)
    return prog


def _list() -> list[ProbeInfo]:
    run = Tool(PARTICLE_CLI).run(["usb", "list"], timeout=30)
    return [
        ProbeInfo("particle-usb", device_id, f"{name} ({details})")
        for name, device_id, details in parse_usb_list(run.output)
    ]


BACKENDS = (
    Backend(
        name="particle-usb",
        open=open_particle_cli,
        list_probes=_list,
        capabilities=CAPABILITIES,
        description="Particle CLI over USB: identify, serial inspect, flash --local, setup-done",
        options=TOOL_OPTIONS | {"port", "timeout"},
    ),
)

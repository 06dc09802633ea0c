"""OpenOCD: the Particle Debugger (CMSIS-DAP), ST-LINK and J-Link, one command line per operation.

This is the guide's and Particle's own route (docs ``jtag.md``; device-os-flash-util
``lib/openocd.js``, spec §5.2, §7, §10.2). Each operation starts OpenOCD with the
probe's interface file and serial, the slot's target file, runs a few ``-c``
commands and exits:

==================  =============================================================
device ID           ``mdb 0x10000060 8`` (nRF52840, prefix ``e00fce68``) /
                    ``mdb 0x1fff7a10 12`` (STM32 UID)
read memory         ``mdb ADDR N`` up to 256 bytes, else ``dump_image FILE ADDR N``
write (nRF52)       ``program FILE ADDR [verify]`` (``** Programming Finished **``,
                    ``** Verified OK **``)
write (STM32)       ``flash write_image erase unlock FILE ADDR`` (``wrote N bytes from
                    file``) then ``verify_image FILE ADDR``; connected with SRST asserted
                    (``reset_config srst_only srst_nogate connect_assert_srst``) because
                    Gen 2 Device OS disables SWD
verify              ``verify_image FILE ADDR`` (``verified N bytes``; ``checksum mismatch``)
reset               ``reset run``
recover (policy)    ``nrf52_recover`` / ``stm32f2x unlock 0`` — only with ``allow_unlock``
==================  =============================================================

``unlock`` in ``flash write_image erase unlock`` clears the STM32 sector *write*
protection (WRP) that guards the bootloader sector, as flash-util does; it does
not touch readout protection (RDP), which only ``stm32f2x unlock`` lifts.

One-shot runs cost OpenOCD's start-up (about half a second) per operation;
device-os-flash-util keeps one OpenOCD per probe and sends it commands instead.
The option ``session=tcl`` does the same
(:mod:`trayline.programmers.openocd_session`); the parsers are shared.

Options (``OpenRequest.options``): ``interface`` (``cmsis-dap`` default,
``stlink``, ``stlink-v2``, ``jlink``), ``speed`` (kHz, default 1000), ``target``
(a target file, e.g. ``target/nrf52-particle.cfg`` from Particle's OpenOCD),
``timeout`` (seconds per write, default 120), ``tool`` (path to openocd),
``record`` (append every transcript to this file), ``session`` (``oneshot``
default, or ``tcl`` for one long-running OpenOCD per probe).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    SeveralProbes,
    TargetNotHalted,
    ToolFailed,
    VerifyFailed,
)
from trayline.programmers.memory_backend import SWD_CAPABILITIES
from trayline.programmers.opening import slot_args
from trayline.programmers.registry import Backend, BadBackendOption, OpenRequest
from trayline.programmers.tool import TOOL_OPTIONS, ErrorPattern, Runner, ToolSpec, tool_for
from trayline.programmers.tool_programmer import ToolArgs
from trayline.programmers.tool_reads import DumpReads
from trayline.programmers.usb_probes import SYSFS_USB, as_probe_info, pick_probe, scan_usb_probes

__all__ = [
    "BACKENDS",
    "INTERFACES",
    "OPENOCD",
    "OpenOcdArgs",
    "OpenOcdProgrammer",
    "open_openocd",
    "parse_mdb",
]

OPENOCD = ToolSpec(
    name="OpenOCD",
    executables=("openocd",),
    env_var="TRAYLINE_OPENOCD",
    install_hint=(
        "Install it with 'apt install openocd' (0.11+), or point TRAYLINE_OPENOCD at the "
        "build Particle Workbench ships in ~/.particle/toolchains/openocd/<version>/bin/openocd."
    ),
)


@dataclass(frozen=True, slots=True)
class Interface:
    config: str
    serial_command: str
    transport: str
    usb_kind: str
    what: str


INTERFACES: dict[str, Interface] = {
    "cmsis-dap": Interface(
        "interface/cmsis-dap.cfg", "cmsis_dap_serial", "swd", "cmsis-dap", "Particle Debugger"
    ),
    "stlink": Interface("interface/stlink.cfg", "hla_serial", "hla_swd", "stlink", "ST-LINK"),
    "stlink-v2": Interface("interface/stlink-v2.cfg", "hla_serial", "hla_swd", "stlink", "ST-LINK"),
    "jlink": Interface("interface/jlink.cfg", "jlink serial", "swd", "jlink", "J-Link"),
}


def _interface(name: str, slot: str) -> Interface:
    """The ``interface`` option's row; an unknown name is a configuration error."""
    if name not in INTERFACES:
        raise BadBackendOption(
            f"{slot}: openocd interface {name!r} is not one of {', '.join(INTERFACES)}"
        )
    return INTERFACES[name]


# Most specific first: a locked nRF52 also fails examination, so protection is checked first.
ERRORS: tuple[ErrorPattern, ...] = (
    ErrorPattern.of(
        r"AP lock engaged|Device Security Bit Set|device is locked",
        ProtectedDevice,
        "the chip is protected (APPROTECT / readout protection): {0}; nothing was erased "
        "(set allow_unlock on this slot to mass-erase and unlock it)",
    ),
    ErrorPattern.of(
        r"unable to find a matching CMSIS-DAP device|No J-Link device found|"
        r"^Error: open failed|LIBUSB_ERROR_ACCESS|unable to open (CMSIS-DAP|ftdi|HID) device",
        ProbeNotFound,
        "probe not found: {0} (check the USB cable, the probe serial and the udev rules)",
    ),
    ErrorPattern.of(
        r"Multiple devices found", SeveralProbes, "several probes attached: {0}; name one"
    ),
    ErrorPattern.of(
        r"checksum mismatch|Verify Failed|^diff \d+ address",
        VerifyFailed,
        "verify failed: {0}; the unit is not flashed",
    ),
    ErrorPattern.of(
        r"target not halted|Target not examined yet|examination failed|Error connecting DP|"
        r"timed out while waiting for target halted|Could not initialize the debug port|"
        r"Failed to read memory",
        TargetNotHalted,
        "the target does not answer: {0} (is it powered and in DFU mode, blinking yellow? "
        "is the SWD ribbon seated?)",
    ),
)

_MDB_LINE = re.compile(r"^0x([0-9a-fA-F]+):((?: [0-9a-fA-F]{2})+)\s*$", re.MULTILINE)


def parse_mdb(output: str, address: int, length: int) -> bytes:
    """Bytes from ``mdb`` output (``0x10000060: 8a 3c 12 f0 …``), checked against the request."""
    data = bytearray()
    for match in _MDB_LINE.finditer(output):
        line_address = int(match.group(1), 16)
        if line_address != address + len(data):
            expected = address + len(data)
            raise ValueError(f"mdb output jumps to {line_address:#x}, expected {expected:#x}")
        data += bytes.fromhex(match.group(2).replace(" ", ""))
    if len(data) != length:
        raise ValueError(f"mdb printed {len(data)} bytes, {length} were asked for")
    return bytes(data)


class OpenOcdArgs(ToolArgs, total=False):
    """An OpenOCD programmer's constructor arguments (for the Tcl-session variant)."""

    interface: str
    speed_khz: int
    target_config: str | None


class OpenOcdProgrammer(DumpReads):
    """One probe on one slot, driven by one-shot OpenOCD runs."""

    name = "openocd"
    capabilities = SWD_CAPABILITIES
    errors = ERRORS
    tool_label = "openocd"
    inline_verb = "mdb"
    dump_verb = "dump_image"
    dump_success = r"dumped \d+ bytes"
    printed_line = _MDB_LINE

    def __init__(
        self,
        probe: ProbeInfo,
        *,
        interface: str = "cmsis-dap",
        speed_khz: int = 1000,
        target_config: str | None = None,
        **common: Unpack[ToolArgs],
    ) -> None:
        super().__init__(probe, **common)
        self.interface = _interface(interface, self.slot)
        self.speed_khz = speed_khz
        self.target_config = target_config or self.mcu.openocd_target

    # -- command lines ----------------------------------------------------------------

    def base_args(self) -> list[str]:
        """Everything before the operation: interface, serial, transport, target, speed, init."""
        args = ["-f", self.interface.config]
        if self.probe.probe_id:
            args += ["-c", f"{self.interface.serial_command} {self.probe.probe_id}"]
        args += ["-c", f"transport select {self.interface.transport}"]
        args += ["-f", self.target_config, "-c", f"adapter speed {self.speed_khz}"]
        if self.mcu.connect_under_reset:
            args += ["-c", "reset_config srst_only srst_nogate connect_assert_srst"]
        args += ["-c", "init"]
        if self.mcu.connect_under_reset:
            args += ["-c", "reset halt"]
        return args

    def command_line(self, *commands: str) -> list[str]:
        """The full argument list (without the executable) for ``commands``."""
        args = self.base_args()
        for command in commands:
            args += ["-c", command]
        return [*args, "-c", "exit"]

    def argv(self, *commands: str) -> list[str]:
        return self.command_line(*commands)

    # -- primitives -------------------------------------------------------------------

    def parse_inline(self, output: str, address: int, length: int) -> bytes:
        return parse_mdb(output, address, length)

    def _write(self, address: int, path: Path, data: bytes, verify: bool) -> bool:
        if self.mcu.family == "nrf52":
            command = f"program {path} {address:#010x}" + (" verify" if verify else "")
            success = r"\*\* Verified OK \*\*" if verify else r"\*\* Programming Finished \*\*"
            self._run(command, timeout=self.write_timeout, success=success)
            return verify
        commands = [f"flash write_image erase unlock {path} {address:#010x}"]
        if verify:
            commands.append(f"verify_image {path} {address:#010x}")
        success = r"verified \d+ bytes" if verify else r"wrote \d+ bytes from file"
        run = self._run(*commands, timeout=self.write_timeout, success=success)
        if not re.search(r"wrote \d+ bytes from file", run.output):
            raise ToolFailed("openocd did not report the write", slot=self.slot)
        return verify

    def verify(self, address: int, data: bytes) -> bool:
        """``verify_image FILE ADDR``: OpenOCD checksums on the target, no bulk read-back."""
        path = self._verify_file(address, data)
        return self._verified_by(
            f"verify_image {path} {address:#010x}", success=r"verified \d+ bytes"
        )

    def _reset(self) -> None:
        self._run("reset run", timeout=self.read_timeout)

    def _recover(self) -> None:
        if self.mcu.family == "nrf52":
            self._run("nrf52_recover", timeout=self.write_timeout)
        else:
            self._run("stm32f2x unlock 0", "reset halt", timeout=self.write_timeout)


_OPTIONS = TOOL_OPTIONS | {"interface", "speed", "target", "timeout", "session"}


def open_openocd(
    request: OpenRequest, *, runner: Runner | None = None, sysfs: Path = SYSFS_USB
) -> OpenOcdProgrammer:
    """The registry's ``open``; ``runner`` and ``sysfs`` are seams for tests."""
    interface = request.option("interface", "cmsis-dap")
    spec = _interface(interface, request.slot)
    session = request.option("session", "oneshot")
    if session not in ("oneshot", "tcl"):
        raise BadBackendOption(f"{request.slot}: openocd session must be oneshot or tcl")
    kind: type[OpenOcdProgrammer] = OpenOcdProgrammer
    if session == "tcl":
        from trayline.programmers.openocd_session import OpenOcdSessionProgrammer

        kind = OpenOcdSessionProgrammer
    tool = tool_for(OPENOCD, request, runner)
    prog = kind(
        ProbeInfo("openocd", request.probe_id, spec.what),
        **slot_args(request),
        tool=tool,
        interface=interface,
        speed_khz=int(request.number("speed", 1000)),
        target_config=request.options.get("target"),
        write_timeout=request.number("timeout", 120.0),
    )
    # Configuration is checked above (options, platform); only now look at tools and USB.
    tool.resolve()
    serial = pick_probe(
        scan_usb_probes(spec.usb_kind, root=sysfs),
        request.probe_id,
        slot=request.slot,
        what=spec.what,
    )
    prog.probe = ProbeInfo("openocd", serial, spec.what)
    return prog


def _list() -> list[ProbeInfo]:
    return [as_probe_info("openocd", p) for p in scan_usb_probes()]


BACKENDS = (
    Backend(
        name="openocd",
        open=open_openocd,
        list_probes=_list,
        capabilities=SWD_CAPABILITIES,
        description="OpenOCD with a Particle Debugger (CMSIS-DAP), ST-LINK or J-Link over SWD",
        options=_OPTIONS,
    ),
)

"""SEGGER J-Link Commander (JLinkExe) driven by command files: the fastest SWD route (spec §5.4).

Every operation writes a small command file and runs::

    JLinkExe [-SelectEmuBySN SN] -device NRF52840_XXAA|STM32F205RG -if SWD -speed 4000
             -autoconnect 1 -ExitOnError 1 -NoGui 1 -CommandFile FILE

==============  =====================================================================
probes          ``ShowEmuList`` (``J-Link[0]: Connection: USB, Serial number: N, …``)
device ID       ``mem8 0x10000060 8`` / ``mem8 0x1FFF7A10 12``
read memory     ``mem8 ADDR N`` up to 256 bytes, else ``savebin FILE ADDR N``
write           ``h`` / ``loadbin FILE ADDR`` / ``verifybin FILE ADDR``
verify          ``verifybin FILE ADDR`` (``Verify successful.``)
reset           ``r`` / ``g``
==============  =====================================================================

``-ExitOnError 1`` makes Commander stop and exit non-zero at the first failing
command; ``-NoGui 1`` keeps the DLL from opening dialogs a station cannot answer.

Protection: this backend never asks J-Link to unsecure a chip and has no
recover step of its own, so a protected chip is always refused, whatever the
slot policy (use ``nrfjprog`` or ``openocd`` on slots that may need recovery).
UNCONFIRMED: whether every J-Link DLL version, with ``-NoGui 1``, declines its
"unsecure?" prompt on a locked nRF52 rather than mass-erasing it; the parser
treats "Device will be unsecured" as a protected chip so the unit is flagged.

Options: ``speed`` (kHz, default 4000), ``tool``, ``timeout``, ``record``.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Unpack

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    TargetNotHalted,
    ToolFailed,
    VerifyFailed,
)
from trayline.programmers.memory_backend import SWD_CAPABILITIES
from trayline.programmers.opening import only_probe, slot_args
from trayline.programmers.registry import Backend, OpenRequest
from trayline.programmers.tool import (
    TOOL_OPTIONS,
    ErrorPattern,
    Runner,
    Tool,
    ToolSpec,
    tool_for,
)
from trayline.programmers.tool_programmer import ToolArgs
from trayline.programmers.tool_reads import DumpReads

__all__ = ["BACKENDS", "JLINK", "JLinkProgrammer", "open_jlink", "parse_emu_list", "parse_mem8"]

JLINK = ToolSpec(
    name="J-Link Commander",
    executables=("JLinkExe", "JLink.exe", "JLink"),
    env_var="TRAYLINE_JLINKEXE",
    install_hint=(
        "Install the SEGGER J-Link Software and Documentation Pack (it provides JLinkExe), "
        "or point TRAYLINE_JLINKEXE at it."
    ),
)

ERRORS: tuple[ErrorPattern, ...] = (
    ErrorPattern.of(
        r"Device will be unsecured|device is secured|Active read protection|"
        r"APPROTECT|readout protection",
        ProtectedDevice,
        "the chip is protected: {0}; the jlink backend never unlocks "
        "(use nrfjprog or openocd with allow_unlock on this slot)",
    ),
    ErrorPattern.of(
        r"Connecting to J-Link via USB\.{3}FAILED|Cannot connect to J-Link|"
        r"Could not find J-Link|Could not connect to J-Link|No J-Link found",
        ProbeNotFound,
        "J-Link not found: {0} (USB cable, serial number, udev rules)",
    ),
    ErrorPattern.of(
        r"Verify failed|Verification failed|Data mismatch",
        VerifyFailed,
        "verify failed: {0}; the unit is not flashed",
    ),
    ErrorPattern.of(
        r"Cannot connect to target|Could not establish a connection to target|"
        r"Failed to halt CPU|Could not connect to target",
        TargetNotHalted,
        "the target does not answer: {0} (powered? in DFU mode? SWD ribbon seated?)",
    ),
    ErrorPattern.of(r"Failed to open file|Could not open file", ToolFailed, "{0}"),
)

_MEM8_LINE = re.compile(r"^([0-9A-Fa-f]{8}) = ((?:[0-9A-Fa-f]{2} )*[0-9A-Fa-f]{2})", re.MULTILINE)
_EMU_LINE = re.compile(
    r"J-Link\[\d+\]: Connection: USB, Serial number: (\d+)(?:, ProductName: ([^\n]*))?"
)


def parse_mem8(output: str, address: int, length: int) -> bytes:
    """Bytes from ``mem8`` output (``10000060 = 8A 3C 12 F0 …``), checked against the request."""
    data = bytearray()
    for match in _MEM8_LINE.finditer(output):
        line_address = int(match.group(1), 16)
        if line_address != address + len(data):
            continue  # register dumps (PC = 000008E4 …) are not memory lines
        data += bytes.fromhex(match.group(2).replace(" ", ""))
    if len(data) != length:
        raise ValueError(f"mem8 printed {len(data)} bytes, {length} were asked for")
    return bytes(data)


def parse_emu_list(output: str) -> list[tuple[str, str]]:
    """``(serial, product)`` for every J-Link ``ShowEmuList`` printed."""
    return [(m.group(1), (m.group(2) or "J-Link").strip()) for m in _EMU_LINE.finditer(output)]


class JLinkProgrammer(DumpReads):
    """One J-Link on one slot, one Commander run (one command file) per operation."""

    name = "jlink"
    capabilities = SWD_CAPABILITIES
    errors = ERRORS
    tool_label = "JLinkExe"
    inline_verb = "mem8"
    dump_verb = "savebin"
    dump_success = r"O\.K\."
    printed_line = _MEM8_LINE

    def __init__(
        self, probe: ProbeInfo, *, speed_khz: int = 4000, **common: Unpack[ToolArgs]
    ) -> None:
        super().__init__(probe, **common)
        self.speed_khz = speed_khz
        self._scripts = 0

    def command_line(self, script: Path) -> list[str]:
        args: list[str] = []
        if self.probe.probe_id:
            args += ["-SelectEmuBySN", self.probe.probe_id]
        args += ["-device", self.mcu.jlink_device, "-if", "SWD", "-speed", str(self.speed_khz)]
        args += ["-autoconnect", "1", "-ExitOnError", "1", "-NoGui", "1"]
        return [*args, "-CommandFile", str(script)]

    def script(self, *commands: str) -> Path:
        """Write a command file (always ending in ``exit``) and return its path."""
        self._scripts += 1
        path = self.workdir() / f"step{self._scripts:03d}.jlink"
        path.write_text("\n".join([*commands, "exit"]) + "\n", encoding="ascii")
        return path

    def argv(self, *commands: str) -> list[str]:
        return self.command_line(self.script(*commands))

    def parse_inline(self, output: str, address: int, length: int) -> bytes:
        return parse_mem8(output, address, length)

    def _write(self, address: int, path: Path, data: bytes, verify: bool) -> bool:
        commands = ["h", f"loadbin {path} {address:#010x}"]
        if verify:
            commands.append(f"verifybin {path} {address:#010x}")
        success = r"Verify successful" if verify else r"O\.K\."
        self._run(*commands, timeout=self.write_timeout, success=success)
        return verify

    def verify(self, address: int, data: bytes) -> bool:
        """``verifybin FILE ADDR``: J-Link compares on its side, no savebin round trip."""
        path = self._verify_file(address, data)
        return self._verified_by(f"verifybin {path} {address:#010x}", success=r"Verify successful")

    def _reset(self) -> None:
        self._run("r", "g", timeout=self.read_timeout)


def _emu_list(tool: Tool, folder: Path) -> list[tuple[str, str]]:
    """``ShowEmuList`` from a command file in ``folder``: ``(serial, product)`` per J-Link."""
    script = folder / "showemulist.jlink"
    script.write_text("ShowEmuList\nexit\n", encoding="ascii")
    return parse_emu_list(tool.run(["-NoGui", "1", "-CommandFile", str(script)], timeout=30).output)


def open_jlink(request: OpenRequest, *, runner: Runner | None = None) -> JLinkProgrammer:
    """The registry's ``open``; with no serial, exactly one J-Link must be attached."""
    tool = tool_for(JLINK, request, runner)
    prog = JLinkProgrammer(
        ProbeInfo("jlink", request.probe_id, "SEGGER J-Link"),
        **slot_args(request),
        tool=tool,
        speed_khz=int(request.number("speed", 4000)),
        write_timeout=request.number("timeout", 120.0),
    )
    if not request.probe_id:
        try:
            serial = only_probe(
                [s for s, _ in _emu_list(tool, prog.workdir())],
                slot=request.slot,
                what="J-Link",
                none="no J-Link attached (ShowEmuList listed none)",
            )
        except Exception:
            prog.close()
            raise
        prog.probe = ProbeInfo("jlink", serial, "SEGGER J-Link")
    return prog


def _list() -> list[ProbeInfo]:
    with tempfile.TemporaryDirectory(prefix="trayline-jlink-") as folder:
        found = _emu_list(Tool(JLINK), Path(folder))
    return [ProbeInfo("jlink", s, p) for s, p in found]


BACKENDS = (
    Backend(
        name="jlink",
        open=open_jlink,
        list_probes=_list,
        capabilities=SWD_CAPABILITIES,
        description="SEGGER J-Link Commander (JLinkExe) command files, Gen 2 and Gen 3",
        options=TOOL_OPTIONS | {"speed", "timeout"},
    ),
)

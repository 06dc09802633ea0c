"""STM32CubeProgrammer's CLI with an ST-LINK: the Gen 2 (Electron / E Series) route (spec §10.3).

Every run connects with ``-c port=SWD [sn=SERIAL] mode=UR`` — *under reset*,
because Gen 2 Device OS turns SWD off once it runs — and then does one thing:

===============  ====================================================================
probes           ``--list st-link`` (``ST-LINK SN  : …`` per probe)
device ID        ``-r32 0x1FFF7A10 3`` (the 96-bit UID; word values, little-endian)
read memory      ``-r32 ADDR WORDS`` (widened to word alignment)
write            ``-w FILE ADDR [-v]`` (``-v`` verifies; ``Download verified successfully``)
reset            ``-rst``
recover (policy) ``-ob RDP=0xAA`` (readout protection back to level 0 = mass erase),
                 only with the slot's ``allow_unlock``
===============  ====================================================================

The CLI exits non-zero on failure and prints ``Error:`` lines; the parser maps
the known ones and keeps the rest as :class:`ToolFailed` with the output.
UNCONFIRMED: the exact wording CubeProgrammer prints for readout protection
(matched loosely on "Read Out Protection" / "RDP").

Options: ``tool``, ``timeout``, ``record``, ``freq`` (SWD kHz, passed as ``freq=``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Unpack

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    TargetNotHalted,
    VerifyFailed,
)
from trayline.programmers.memory_backend import SWD_CAPABILITIES
from trayline.programmers.opening import only_probe, slot_args
from trayline.programmers.registry import Backend, OpenRequest
from trayline.programmers.tool import TOOL_OPTIONS, ErrorPattern, Runner, Tool, ToolSpec, tool_for
from trayline.programmers.tool_programmer import ToolArgs
from trayline.programmers.tool_reads import WordReads, parse_word_lines

__all__ = [
    "BACKENDS",
    "STM32_PROGRAMMER",
    "Stm32ProgrammerCli",
    "open_stm32_programmer",
    "parse_r32",
    "parse_stlink_list",
]

STM32_PROGRAMMER = ToolSpec(
    name="STM32CubeProgrammer CLI",
    executables=("STM32_Programmer_CLI", "STM32_Programmer_CLI.exe"),
    env_var="TRAYLINE_STM32_PROGRAMMER",
    install_hint=(
        "Install STM32CubeProgrammer from st.com (its bin/ folder holds STM32_Programmer_CLI), "
        "or point TRAYLINE_STM32_PROGRAMMER at it."
    ),
)

ERRORS: tuple[ErrorPattern, ...] = (
    ErrorPattern.of(
        r"Read Out Protection|RDP level 1|readout protect",
        ProtectedDevice,
        "the chip has readout protection: {0}; nothing was erased "
        "(set allow_unlock on this slot to regress RDP, which mass-erases the chip)",
    ),
    ErrorPattern.of(
        r"No debug probe detected|No ST-LINK detected|ST-LINK .*not found|"
        r"Unable to get ST-LINK serial|probe with serial number .* not",
        ProbeNotFound,
        "ST-LINK not found: {0} (USB cable, serial number, udev rules)",
    ),
    ErrorPattern.of(
        r"Data mismatch|verification failed|Download verification failed",
        VerifyFailed,
        "verify failed: {0}; the unit is not flashed",
    ),
    ErrorPattern.of(
        r"No STM32 target found|Unable to connect to the target|Target not halted|"
        r"target is not connected|DEV_TARGET_(CMD_ERR|NOT_HALTED)",
        TargetNotHalted,
        "the target does not answer: {0} (powered? SWD wired to D7/D6 and GND? reset line?)",
    ),
)

_R32_LINE = re.compile(r"^0x([0-9A-Fa-f]{8})\s*:\s*((?:[0-9A-Fa-f]{8}\s*)+)$", re.MULTILINE)
_SN_LINE = re.compile(r"ST-LINK SN\s*:\s*([0-9A-Za-z]+)")


def parse_r32(output: str, address: int, length: int) -> bytes:
    """Bytes from ``-r32`` output (``0x1FFF7A10 : 00270036 35344709 …``; word values, LE)."""
    return parse_word_lines(output, address, length, line=_R32_LINE, what="-r32")


def parse_stlink_list(output: str) -> list[str]:
    """ST-LINK serial numbers from ``--list st-link``."""
    return _SN_LINE.findall(output)


class Stm32ProgrammerCli(WordReads):
    """One ST-LINK on one Electron slot, one CLI run per operation."""

    name = "stm32-programmer"
    capabilities = SWD_CAPABILITIES
    errors = ERRORS
    tool_label = "STM32_Programmer_CLI"
    word_verb = "-r32"
    only_family = "stm32f2"
    other_family = "STM32CubeProgrammer programs the Electron's STM32 only, not the nRF52840"

    def __init__(
        self, probe: ProbeInfo, *, freq_khz: int | None = None, **common: Unpack[ToolArgs]
    ) -> None:
        super().__init__(probe, **common)
        self.freq_khz = freq_khz

    def connect_args(self) -> list[str]:
        args = ["-c", "port=SWD"]
        if self.probe.probe_id:
            args.append(f"sn={self.probe.probe_id}")
        if self.freq_khz:
            args.append(f"freq={self.freq_khz}")
        return [*args, "mode=UR"]

    def argv(self, *commands: str) -> list[str]:
        return [*self.connect_args(), *commands]

    def word_read_args(self, start: int, count: int) -> list[str]:
        return ["-r32", f"{start:#010x}", str(count // 4)]

    def parse_words(self, output: str, start: int, count: int) -> bytes:
        return parse_r32(output, start, count)

    def _write(self, address: int, path: Path, data: bytes, verify: bool) -> bool:
        args = ["-w", str(path), f"{address:#010x}"]
        if verify:
            args.append("-v")
        success = r"Download verified successfully" if verify else r"File download complete"
        self._run(*args, timeout=self.write_timeout, success=success)
        return verify

    def _reset(self) -> None:
        self._run("-rst", timeout=self.read_timeout)

    def _recover(self) -> None:
        self._run("-ob", "RDP=0xAA", timeout=self.write_timeout)


def open_stm32_programmer(
    request: OpenRequest, *, runner: Runner | None = None
) -> Stm32ProgrammerCli:
    """The registry's ``open``; with no serial, exactly one ST-LINK must be attached."""
    tool = tool_for(STM32_PROGRAMMER, request, runner)
    freq = request.options.get("freq")
    prog = Stm32ProgrammerCli(
        ProbeInfo("stm32-programmer", request.probe_id, "ST-LINK"),
        **slot_args(request),
        tool=tool,
        write_timeout=request.number("timeout", 120.0),
        freq_khz=int(request.number("freq", 4000)) if freq else None,
    )
    if not request.probe_id:
        serial = only_probe(
            _serials(tool),
            slot=request.slot,
            what="ST-LINK",
            none="no ST-LINK attached (--list st-link)",
        )
        prog.probe = ProbeInfo("stm32-programmer", serial, "ST-LINK")
    return prog


def _serials(tool: Tool) -> list[str]:
    return parse_stlink_list(tool.run(["--list", "st-link"], timeout=30).output)


def _list() -> list[ProbeInfo]:
    return [ProbeInfo("stm32-programmer", s, "ST-LINK") for s in _serials(Tool(STM32_PROGRAMMER))]


BACKENDS = (
    Backend(
        name="stm32-programmer",
        open=open_stm32_programmer,
        list_probes=_list,
        capabilities=SWD_CAPABILITIES,
        description="STM32CubeProgrammer CLI with an ST-LINK (Gen 2 Electron / E Series)",
        options=TOOL_OPTIONS | {"timeout", "freq"},
    ),
)

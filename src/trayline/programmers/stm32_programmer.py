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

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    SeveralProbes,
    SlotPolicy,
    TargetNotHalted,
    ToolFailed,
    VerifyFailed,
)
from trayline.programmers.memory_backend import SWD_CAPABILITIES, MemoryProgrammer
from trayline.programmers.registry import Backend, BadBackendOption, OpenRequest
from trayline.programmers.tool import (
    ErrorPattern,
    Runner,
    Tool,
    ToolRun,
    ToolSpec,
    classify,
    tool_for,
)

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
    data = bytearray()
    for match in _R32_LINE.finditer(output):
        if int(match.group(1), 16) != address + len(data):
            raise ValueError(f"-r32 output jumps to 0x{match.group(1)}")
        for word in match.group(2).split():
            data += int(word, 16).to_bytes(4, "little")
    if len(data) != length:
        raise ValueError(f"-r32 printed {len(data)} bytes, {length} were asked for")
    return bytes(data)


def parse_stlink_list(output: str) -> list[str]:
    """ST-LINK serial numbers from ``--list st-link``."""
    return _SN_LINE.findall(output)


class Stm32ProgrammerCli(MemoryProgrammer):
    """One ST-LINK on one Electron slot, one CLI run per operation."""

    name = "stm32-programmer"
    capabilities = SWD_CAPABILITIES

    def __init__(
        self,
        probe: ProbeInfo,
        *,
        slot: str,
        platform_id: int,
        policy: SlotPolicy,
        tool: Tool,
        write_timeout: float = 120.0,
        freq_khz: int | None = None,
    ) -> None:
        super().__init__(probe, slot=slot, platform_id=platform_id, policy=policy)
        if self.mcu.family != "stm32f2":
            raise BadBackendOption(
                f"{slot}: STM32CubeProgrammer programs the Electron's STM32 only, not the nRF52840"
            )
        self.tool = tool
        self.write_timeout = write_timeout
        self.read_timeout = 60.0
        self.freq_khz = freq_khz

    def connect_args(self) -> list[str]:
        args = ["-c", "port=SWD"]
        if self.probe.probe_id:
            args.append(f"sn={self.probe.probe_id}")
        if self.freq_khz:
            args.append(f"freq={self.freq_khz}")
        return [*args, "mode=UR"]

    def _run(self, *args: str, timeout: float, success: str | None = None) -> ToolRun:
        run = self.tool.run([*self.connect_args(), *args], timeout=timeout)
        marker = re.compile(success) if success else None
        error = classify(run, ERRORS, slot=self.slot, tool="STM32_Programmer_CLI", success=marker)
        if error is not None:
            raise error
        return run

    def _read(self, address: int, length: int) -> bytes:
        start = address - address % 4
        end = -(-(address + length) // 4) * 4
        words = (end - start) // 4
        timeout = self.read_timeout if words <= 16384 else self.write_timeout
        run = self._run("-r32", f"{start:#010x}", str(words), timeout=timeout)
        try:
            data = parse_r32(run.output, start, end - start)
        except ValueError as exc:
            raise ToolFailed(
                f"STM32_Programmer_CLI -r32: {exc}", slot=self.slot, transcript=run.transcript
            ) from exc
        return data[address - start : address - start + length]

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
        slot=request.slot,
        platform_id=request.platform_id,
        policy=request.policy,
        tool=tool,
        write_timeout=request.number("timeout", 120.0),
        freq_khz=int(request.number("freq", 4000)) if freq else None,
    )
    if not request.probe_id:
        serials = parse_stlink_list(tool.run(["--list", "st-link"], timeout=30).output)
        if not serials:
            raise ProbeNotFound("no ST-LINK attached (--list st-link)", slot=request.slot)
        if len(serials) > 1:
            raise SeveralProbes(
                f"{len(serials)} ST-LINKs attached ({', '.join(serials)}); name one with --probe",
                slot=request.slot,
            )
        prog.probe = ProbeInfo("stm32-programmer", serials[0], "ST-LINK")
    return prog


def _list() -> list[ProbeInfo]:
    run = Tool(STM32_PROGRAMMER).run(["--list", "st-link"], timeout=30)
    return [ProbeInfo("stm32-programmer", s, "ST-LINK") for s in parse_stlink_list(run.output)]


BACKENDS = (
    Backend(
        name="stm32-programmer",
        open=open_stm32_programmer,
        list_probes=_list,
        capabilities=SWD_CAPABILITIES,
        description="STM32CubeProgrammer CLI with an ST-LINK (Gen 2 Electron / E Series)",
        options=frozenset({"tool", "timeout", "record", "freq"}),
    ),
)

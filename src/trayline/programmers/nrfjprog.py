"""nrfjprog (Nordic nRF Command Line Tools with a SEGGER J-Link): Gen 3 only, about 7 s a unit.

Command lines (spec §5.3; Nordic's tool, one process per operation):

=================  ==================================================================
probes             ``nrfjprog --ids`` (one J-Link serial number per line)
device ID          ``nrfjprog -f NRF52 -s SNR --memrd 0x10000060 --n 8``
read memory        ``--memrd ADDR --n N`` (word reads; address and length are
                   widened to 4-byte alignment and the extra bytes dropped)
write              ``--program FILE.hex --sectorerase [--verify]`` — nrfjprog takes
                   Intel HEX only, so the module is wrapped in a hex first
verify             ``--verify FILE.hex`` (on its own: compare only)
reset              ``--reset``
recover (policy)   ``--recover`` (CTRL-AP ERASEALL: erases flash *and* UICR) —
                   only with the slot's ``allow_unlock``
=================  ==================================================================

nrfjprog cannot program the STM32 (Electron): opening it for platform 10 is a
configuration error. Output changed between versions (10.15 and later print
progress bars such as ``Program file - Done programming``; older ones print
``Verified OK.``); both forms are recognised. Error *text* is what the parser
trusts; the DLL error numbers it prints (``-90`` access protection, ``-21``
recover failed, ``-102`` J-Link DLL error) are matched as well.
UNCONFIRMED: the process exit-code table (33 has been seen for "Unable to
connect to a debugger"); exit codes are only used as "non-zero = failed".

Options: ``tool`` (path), ``timeout`` (seconds per write, default 120), ``record``.
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
from trayline.programmers.hexrecords import encode_hex_records
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
    "NRFJPROG",
    "NrfjprogProgrammer",
    "open_nrfjprog",
    "parse_ids",
    "parse_memrd",
]

NRFJPROG = ToolSpec(
    name="nrfjprog",
    executables=("nrfjprog",),
    env_var="TRAYLINE_NRFJPROG",
    install_hint=(
        "Install Nordic's nRF Command Line Tools (nrfjprog) and SEGGER's J-Link Software "
        "Pack, or point TRAYLINE_NRFJPROG at the nrfjprog executable."
    ),
)

ERRORS: tuple[ErrorPattern, ...] = (
    ErrorPattern.of(
        r"Access protection is enabled|NOT_AVAILABLE_BECAUSE_PROTECTION|result -90\b|"
        r"readback protection",
        ProtectedDevice,
        "the chip is protected (APPROTECT): {0}; nothing was erased "
        "(set allow_unlock on this slot to run nrfjprog --recover, which erases everything)",
    ),
    ErrorPattern.of(
        r"There is no debugger connected|No debuggers were discovered|"
        r"Unable to connect to a debugger|serial number .* not (found|connected)",
        ProbeNotFound,
        "J-Link not found: {0} (check the USB cable and the serial number)",
    ),
    ErrorPattern.of(
        r"more than one debugger|multiple debuggers", SeveralProbes, "several J-Links: {0}"
    ),
    ErrorPattern.of(
        r"Write verify failed|Verify failed|Data does not match",
        VerifyFailed,
        "verify failed: {0}; the unit is not flashed",
    ),
    ErrorPattern.of(
        r"Could not connect to CPU core|Unable to connect to target|timeout elapsed.*debug port|"
        r"Failed to read device memories|Recover failed",
        TargetNotHalted,
        "the target does not answer: {0} (powered? in DFU mode? SWD ribbon seated?)",
    ),
)

_MEMRD_LINE = re.compile(r"^0x([0-9A-Fa-f]{8}):\s+((?:[0-9A-Fa-f]{8}\s*)+)", re.MULTILINE)
_IDS_LINE = re.compile(r"^\s*(\d{6,12})\s*$", re.MULTILINE)
_PROGRAM_OK = r"Verified OK|Done verifying|Done programming|Programming device\."
_VERIFY_OK = r"Verified OK|Done verifying"


def parse_memrd(output: str, address: int, length: int) -> bytes:
    """Bytes from ``--memrd`` output: 32-bit words (printed as values, little-endian in memory)."""
    data = bytearray()
    for match in _MEMRD_LINE.finditer(output):
        line_address = int(match.group(1), 16)
        if line_address != address + len(data):
            raise ValueError(f"memrd output jumps to {line_address:#x}")
        for word in match.group(2).split():
            data += int(word, 16).to_bytes(4, "little")
    if len(data) != length:
        raise ValueError(f"memrd printed {len(data)} bytes, {length} were asked for")
    return bytes(data)


def parse_ids(output: str) -> list[str]:
    """J-Link serial numbers from ``nrfjprog --ids``."""
    return _IDS_LINE.findall(output)


class NrfjprogProgrammer(MemoryProgrammer):
    """One J-Link on one Gen 3 slot, one nrfjprog run per operation."""

    name = "nrfjprog"
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
    ) -> None:
        super().__init__(probe, slot=slot, platform_id=platform_id, policy=policy)
        if self.mcu.family != "nrf52":
            raise BadBackendOption(f"{slot}: nrfjprog programs nRF52 chips only, not the STM32")
        self.tool = tool
        self.write_timeout = write_timeout
        self.read_timeout = 60.0

    def command_line(self, *args: str) -> list[str]:
        base = ["-f", "NRF52"]
        if self.probe.probe_id:
            base += ["-s", self.probe.probe_id]
        return [*base, *args]

    def _run(self, *args: str, timeout: float, success: str | None = None) -> ToolRun:
        run = self.tool.run(self.command_line(*args), timeout=timeout)
        marker = re.compile(success) if success else None
        error = classify(run, ERRORS, slot=self.slot, tool="nrfjprog", success=marker)
        if error is not None:
            raise error
        return run

    def _read(self, address: int, length: int) -> bytes:
        start = address - address % 4
        end = -(-(address + length) // 4) * 4
        count = end - start
        run = self._run("--memrd", f"{start:#010x}", "--n", str(count), timeout=self._t(count))
        try:
            words = parse_memrd(run.output, start, end - start)
        except ValueError as exc:
            raise ToolFailed(
                f"nrfjprog --memrd: {exc}", slot=self.slot, transcript=run.transcript
            ) from exc
        return words[address - start : address - start + length]

    def _t(self, length: int) -> float:
        return self.read_timeout if length <= 65536 else self.write_timeout

    def _write(self, address: int, path: Path, data: bytes, verify: bool) -> bool:
        hex_path = path.with_suffix(".hex")
        hex_path.write_text(encode_hex_records(address, data), encoding="ascii")
        args = ["--program", str(hex_path), "--sectorerase"]
        if verify:
            args.append("--verify")
        self._run(*args, timeout=self.write_timeout, success=_PROGRAM_OK)
        return verify

    def verify(self, address: int, data: bytes) -> bool:
        """``--verify FILE.hex`` on its own: nrfjprog compares the device with the file."""
        self._check_range(address, len(data))
        hex_path = self.workdir() / f"verify-{address:08x}.hex"
        hex_path.write_text(encode_hex_records(address, data), encoding="ascii")
        try:
            self._guarded(
                lambda: self._run(
                    "--verify", str(hex_path), timeout=self.write_timeout, success=_VERIFY_OK
                )
            )
        except VerifyFailed:
            return False
        return True

    def _reset(self) -> None:
        self._run("--reset", timeout=self.read_timeout)

    def _recover(self) -> None:
        self._run("--recover", timeout=self.write_timeout)


def open_nrfjprog(request: OpenRequest, *, runner: Runner | None = None) -> NrfjprogProgrammer:
    """The registry's ``open``: configuration checked first, then the one-J-Link rule."""
    tool = tool_for(NRFJPROG, request, runner)
    prog = NrfjprogProgrammer(
        ProbeInfo("nrfjprog", request.probe_id, "SEGGER J-Link"),
        slot=request.slot,
        platform_id=request.platform_id,
        policy=request.policy,
        tool=tool,
        write_timeout=request.number("timeout", 120.0),
    )
    if not request.probe_id:
        prog.probe = ProbeInfo("nrfjprog", _only_probe(tool, request.slot), "SEGGER J-Link")
    return prog


def _only_probe(tool: Tool, slot: str) -> str:
    """With no serial named, exactly one J-Link must be attached (never "the first one")."""
    serials = parse_ids(tool.run(["--ids"], timeout=30.0).output)
    if not serials:
        raise ProbeNotFound("no J-Link attached (nrfjprog --ids listed none)", slot=slot)
    if len(serials) > 1:
        raise SeveralProbes(
            f"{len(serials)} J-Links attached ({', '.join(serials)}); name one with --probe",
            slot=slot,
        )
    return serials[0]


def _list() -> list[ProbeInfo]:
    serials = parse_ids(Tool(NRFJPROG).run(["--ids"], timeout=30.0).output)
    return [ProbeInfo("nrfjprog", s, "SEGGER J-Link") for s in serials]


BACKENDS = (
    Backend(
        name="nrfjprog",
        open=open_nrfjprog,
        list_probes=_list,
        capabilities=SWD_CAPABILITIES,
        description="Nordic nrfjprog with a SEGGER J-Link (Gen 3 nRF52840 only)",
        options=frozenset({"tool", "timeout", "record"}),
    ),
)

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

from trayline.core.hexrecords import encode_hex_records
from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    SeveralProbes,
    TargetNotHalted,
    VerifyFailed,
)
from trayline.programmers.memory_backend import SWD_CAPABILITIES
from trayline.programmers.opening import only_probe, slot_args
from trayline.programmers.registry import Backend, OpenRequest
from trayline.programmers.tool import TOOL_OPTIONS, ErrorPattern, Runner, Tool, ToolSpec, tool_for
from trayline.programmers.tool_reads import WordReads, parse_word_lines

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
    return parse_word_lines(output, address, length, line=_MEMRD_LINE, what="memrd")


def parse_ids(output: str) -> list[str]:
    """J-Link serial numbers from ``nrfjprog --ids``."""
    return _IDS_LINE.findall(output)


class NrfjprogProgrammer(WordReads):
    """One J-Link on one Gen 3 slot, one nrfjprog run per operation."""

    name = "nrfjprog"
    capabilities = SWD_CAPABILITIES
    errors = ERRORS
    tool_label = "nrfjprog"
    word_verb = "--memrd"
    only_family = "nrf52"
    other_family = "nrfjprog programs nRF52 chips only, not the STM32"

    def command_line(self, *args: str) -> list[str]:
        base = ["-f", "NRF52"]
        if self.probe.probe_id:
            base += ["-s", self.probe.probe_id]
        return [*base, *args]

    def argv(self, *commands: str) -> list[str]:
        return self.command_line(*commands)

    def word_read_args(self, start: int, count: int) -> list[str]:
        return ["--memrd", f"{start:#010x}", "--n", str(count)]

    def parse_words(self, output: str, start: int, count: int) -> bytes:
        return parse_memrd(output, start, count)

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
        return self._verified_by("--verify", str(hex_path), success=_VERIFY_OK)

    def _reset(self) -> None:
        self._run("--reset", timeout=self.read_timeout)

    def _recover(self) -> None:
        self._run("--recover", timeout=self.write_timeout)


def open_nrfjprog(request: OpenRequest, *, runner: Runner | None = None) -> NrfjprogProgrammer:
    """The registry's ``open``: configuration checked first, then the one-J-Link rule."""
    tool = tool_for(NRFJPROG, request, runner)
    prog = NrfjprogProgrammer(
        ProbeInfo("nrfjprog", request.probe_id, "SEGGER J-Link"),
        **slot_args(request),
        tool=tool,
        write_timeout=request.number("timeout", 120.0),
    )
    if not request.probe_id:
        serial = only_probe(
            _serials(tool),
            slot=request.slot,
            what="J-Link",
            none="no J-Link attached (nrfjprog --ids listed none)",
        )
        prog.probe = ProbeInfo("nrfjprog", serial, "SEGGER J-Link")
    return prog


def _serials(tool: Tool) -> list[str]:
    return parse_ids(tool.run(["--ids"], timeout=30.0).output)


def _list() -> list[ProbeInfo]:
    return [ProbeInfo("nrfjprog", s, "SEGGER J-Link") for s in _serials(Tool(NRFJPROG))]


BACKENDS = (
    Backend(
        name="nrfjprog",
        open=open_nrfjprog,
        list_probes=_list,
        capabilities=SWD_CAPABILITIES,
        description="Nordic nrfjprog with a SEGGER J-Link (Gen 3 nRF52840 only)",
        options=TOOL_OPTIONS | {"timeout"},
    ),
)

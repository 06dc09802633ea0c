"""The ``dfu-util`` backend: Particle's DFU mode through the dfu-util program.

For stations that already trust dfu-util (or cannot load libusb into Python),
this backend runs the command lines device-os-flash-util and Particle's docs
use (spec §2.5, §7), one process per operation, with the device selected by
its serial number (= device ID) so eight devices on one hub cannot be mixed
up::

    dfu-util -d 2b04:d00d -a 0 -S <id> -s 0x000b4000 -D module.bin           write
    dfu-util -d 2b04:d00d -a 0 -S <id> -s 0x000b4000:leave -D module.bin     write, then run
    dfu-util -d 2b04:d00d -a 0 -S <id> -s 0x000b4000:4096 -U out.bin         read back
    dfu-util -d 2b04:d00d -a 0 -S <id> -s 0x000b4000:leave -D empty.bin      leave DFU (reset)
    dfu-util -l                                                              list devices

The device must already be in DFU mode (dfu-util cannot send control
requests; use the ``usb`` backend or ``trayline device dfu`` to switch), and
the bootloader and NCP cannot be written this way (§2.5, §6): the backend has
no NCP_UPDATE and refuses modules whose prefix says bootloader or NCP.

Options: ``tool`` (path to dfu-util), ``record`` (append transcripts to a file).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from trayline.core.ids import DeviceId, InvalidIdentifier
from trayline.core.modules import ModuleError, ModuleFunction, parse_module
from trayline.programmers.base import (
    Capability,
    ModuleOnDevice,
    ProbeInfo,
    ProbeNotFound,
    Programmer,
    ProgrammerError,
    SeveralProbes,
    ToolFailed,
    VerifyFailed,
    WriteResult,
)
from trayline.programmers.lifecycle import ClosesOnExit
from trayline.programmers.opening import only_probe
from trayline.programmers.registry import Backend, OpenRequest
from trayline.programmers.scan import scan_modules
from trayline.programmers.tool import (
    TOOL_OPTIONS,
    ErrorPattern,
    Tool,
    ToolSpec,
    classify,
    tool_for,
)
from trayline.usb.vidpid import UsbMode, pid_for, product_for

__all__ = ["BACKENDS", "DfuUtilProgrammer", "parse_list"]

SPEC = ToolSpec(
    "dfu-util",
    ("dfu-util",),
    "TRAYLINE_DFU_UTIL",
    "Install dfu-util (Debian/Ubuntu: apt install dfu-util; macOS: brew install dfu-util).",
)
TIMEOUT_S = 120.0
"""device-os-flash-util gives each dfu-util call 2 minutes."""

PATTERNS = (
    ErrorPattern.of(r"No DFU capable USB device available", ProbeNotFound,
                    "no device in DFU mode answers: {0}"),
    ErrorPattern.of(r"More than one DFU capable USB device found", SeveralProbes,
                    "several DFU devices and none selected: {0}"),
    ErrorPattern.of(r"LIBUSB_ERROR_ACCESS|Cannot open DFU device", ProbeNotFound,
                    "cannot open the DFU device (udev rules? see docs/usb.md): {0}"),
    ErrorPattern.of(r"is not writeable|is not readable", ProgrammerError,
                    "the DFU memory map refuses this range: {0}"),
    ErrorPattern.of(r"dfuERROR|Error during (download|upload)|status\([1-9]\d*\)", ToolFailed,
                    "the DFU bootloader reported an error: {0}"),
)  # fmt: skip
_DOWNLOADED = re.compile(r"File downloaded successfully|Download done", re.IGNORECASE)
_UPLOADED = re.compile(r"Upload done|Received a total of|bytes_uploaded", re.IGNORECASE)
_FOUND = re.compile(
    r'Found DFU: \[(?P<vid>[0-9a-f]{4}):(?P<pid>[0-9a-f]{4})\].*?path="(?P<path>[^"]*)"'
    r'.*?alt=(?P<alt>\d+).*?serial="(?P<serial>[^"]*)"',
    re.IGNORECASE,
)
_CONTROL_ONLY = frozenset({ModuleFunction.BOOTLOADER, ModuleFunction.NCP_FIRMWARE})


def parse_list(output: str) -> list[ProbeInfo]:
    """Devices of ``dfu-util -l`` that are Particle devices in DFU mode, one per serial."""
    seen: dict[str, ProbeInfo] = {}
    for match in _FOUND.finditer(output):
        product = product_for(int(match["vid"], 16), int(match["pid"], 16))
        if product is None or product.mode is not UsbMode.DFU:
            continue
        serial = match["serial"].lower()
        seen.setdefault(serial, ProbeInfo(
            "dfu-util", serial, f"platform {product.platform_id} in DFU mode", match["path"]
        ))  # fmt: skip
    return list(seen.values())


class DfuUtilProgrammer(ClosesOnExit):
    """One device in DFU mode, driven by dfu-util processes."""

    name = "dfu-util"
    capabilities = frozenset(
        {Capability.READ_DEVICE_ID, Capability.READ_MEMORY, Capability.READ_MODULES,
         Capability.WRITE_MODULE, Capability.VERIFY, Capability.RESET}
    )  # fmt: skip

    def __init__(self, tool: Tool, device_id: str, *, slot: str, platform_id: int) -> None:
        self.tool = tool
        self.device_id = device_id.lower()
        self.slot = slot
        self.platform_id = platform_id
        self.probe = ProbeInfo("dfu-util", self.device_id, "Particle device in DFU mode")
        self._device = f"2b04:{pid_for(platform_id, UsbMode.DFU):04x}"
        self._tmp = tempfile.TemporaryDirectory(prefix="trayline-dfu-")

    def _args(self, *rest: str) -> list[str]:
        return ["-d", self._device, "-a", "0", "-S", self.device_id, *rest]

    def _run(self, args: list[str], success: re.Pattern[str]) -> None:
        run = self.tool.run(args, timeout=TIMEOUT_S)
        error = classify(run, PATTERNS, slot=self.slot, tool="dfu-util", success=success)
        if error is not None:
            raise error

    def read_device_id(self) -> DeviceId:
        try:
            return DeviceId.parse(self.device_id)
        except InvalidIdentifier as exc:
            raise ToolFailed(str(exc), slot=self.slot) from None

    def read_memory(self, address: int, length: int) -> bytes:
        out = Path(self._tmp.name) / f"upload-{address:08x}.bin"
        out.unlink(missing_ok=True)
        self._run(self._args("-s", f"0x{address:08x}:{length}", "-U", str(out)), _UPLOADED)
        try:
            return out.read_bytes()[:length]
        except FileNotFoundError:
            raise ToolFailed(
                "dfu-util reported an upload but wrote no file", slot=self.slot
            ) from None

    def read_modules(self) -> list[ModuleOnDevice]:
        return scan_modules(self.read_memory, self.platform_id)

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        try:
            function = parse_module(data).function
        except ModuleError:
            function = None
        if function in _CONTROL_ONLY:
            raise ProgrammerError(
                "the bootloader and NCP cannot be written over DFU; use the usb backend",
                slot=self.slot,
            )
        started = time.perf_counter()
        path = Path(self._tmp.name) / f"module-{address:08x}.bin"
        path.write_bytes(data)
        self._run(self._args("-s", f"0x{address:08x}", "-D", str(path)), _DOWNLOADED)
        verified = False
        if verify:
            if not self.verify(address, data):
                raise VerifyFailed(f"read-back at {address:#010x} differs", slot=self.slot)
            verified = True
        return WriteResult(address, len(data), time.perf_counter() - started, verified, "dfu-util")

    def verify(self, address: int, data: bytes) -> bool:
        return self.read_memory(address, len(data)) == data

    def reset(self) -> None:
        """``:leave`` with an empty download: the device manifests and boots its firmware."""
        empty = Path(self._tmp.name) / "empty.bin"
        empty.write_bytes(b"")
        start = "0x08000000" if self.platform_id == 10 else "0x00000000"
        self._run(self._args("-s", f"{start}:leave", "-D", str(empty)), _DOWNLOADED)

    def close(self) -> None:
        self._tmp.cleanup()


def open_dfu_util(request: OpenRequest, tool: Tool | None = None) -> Programmer:
    from trayline.programmers.usb import check_platform_option

    check_platform_option(request, "dfu-util")
    tool = tool or tool_for(SPEC, request)
    tool.resolve()
    device_id = request.probe_id.strip()
    if not device_id:
        device_id = only_probe(
            [p.probe_id for p in parse_list(tool.run(["-l"], timeout=30.0).output)],
            slot=request.slot,
            what="device",
            none="no Particle device in DFU mode",
            several="several devices in DFU mode ({ids}); name one",
        )
    return DfuUtilProgrammer(tool, device_id, slot=request.slot, platform_id=request.platform_id)


def list_dfu_util_probes() -> list[ProbeInfo]:
    tool = Tool(SPEC)
    return parse_list(tool.run(["-l"], timeout=30.0).output)


BACKENDS: tuple[Backend, ...] = (
    Backend(
        name="dfu-util",
        open=open_dfu_util,
        list_probes=list_dfu_util_probes,
        capabilities=DfuUtilProgrammer.capabilities,
        description="DfuSe through the dfu-util program (device already in DFU mode)",
        options=TOOL_OPTIONS,
    ),
)

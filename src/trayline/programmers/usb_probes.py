"""Which debug probes are plugged in, read from Linux sysfs without opening any of them.

OpenOCD, nrfjprog and JLinkExe all pick "the first probe" when none is named,
which on a station with eight slots means flashing the wrong unit. So before a
tool runs with no probe serial, a backend asks here how many probes of its
kind are attached: none is :class:`ProbeNotFound`, more than one is
:class:`SeveralProbes` listing their serials. It is also what
``list_probes`` reports for the SWD backends.

Reading ``/sys/bus/usb/devices/*/{idVendor,idProduct,serial,product}`` needs no
permissions and no libusb; the root is injectable for tests. VID:PIDs from
spec §0 (Particle Debugger 0D28:0204; ST-LINK/V2 0483:3748; J-Link 1366:0101 and
1366:1015) plus the ST-LINK/V2-1 and V3 PIDs that OpenOCD's ``stlink.cfg`` also
lists (0483:374B, 374E, 374F, 3753).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trayline.programmers.base import ProbeInfo
from trayline.programmers.opening import only_probe

__all__ = [
    "KNOWN_PROBES",
    "SYSFS_USB",
    "UsbProbe",
    "as_probe_info",
    "pick_probe",
    "scan_usb_probes",
]

SYSFS_USB = Path("/sys/bus/usb/devices")

KNOWN_PROBES: dict[tuple[int, int], tuple[str, str]] = {
    (0x0D28, 0x0204): ("cmsis-dap", "Particle Debugger / DAPLink (CMSIS-DAP)"),
    (0x0483, 0x3748): ("stlink", "ST-LINK/V2"),
    (0x0483, 0x374B): ("stlink", "ST-LINK/V2-1"),
    (0x0483, 0x374E): ("stlink", "STLINK-V3"),
    (0x0483, 0x374F): ("stlink", "STLINK-V3"),
    (0x0483, 0x3753): ("stlink", "STLINK-V3"),
    (0x1366, 0x0101): ("jlink", "SEGGER J-Link"),
    (0x1366, 0x1015): ("jlink", "SEGGER J-Link (CDC)"),
    (0x1209, 0x4853): ("cmsis-dap", "hs-probe (CMSIS-DAP)"),
}
"""(VID, PID) → (probe kind, description). The kind picks the OpenOCD interface file."""


@dataclass(frozen=True, slots=True)
class UsbProbe:
    kind: str
    serial: str
    description: str
    vid: int
    pid: int
    sysfs: str


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def scan_usb_probes(kind: str | None = None, *, root: Path = SYSFS_USB) -> list[UsbProbe]:
    """Every known probe under ``root`` (of ``kind`` when given), sorted by serial."""
    found: list[UsbProbe] = []
    if not root.is_dir():
        return found
    for device in sorted(root.iterdir()):
        try:
            vid = int(_read(device / "idVendor") or "x", 16)
            pid = int(_read(device / "idProduct") or "x", 16)
        except ValueError:
            continue
        known = KNOWN_PROBES.get((vid, pid))
        if known is None or (kind is not None and known[0] != kind):
            continue
        product = _read(device / "product") or known[1]
        found.append(UsbProbe(known[0], _read(device / "serial"), product, vid, pid, device.name))
    return sorted(found, key=lambda p: (p.serial, p.sysfs))


def as_probe_info(backend: str, probe: UsbProbe) -> ProbeInfo:
    return ProbeInfo(
        backend=backend,
        probe_id=probe.serial,
        description=f"{probe.description} ({probe.vid:04x}:{probe.pid:04x}, usb {probe.sysfs})",
    )


def pick_probe(probes: list[UsbProbe], wanted: str, *, slot: str, what: str) -> str:
    """The serial to use: ``wanted`` if given, else the only attached probe.

    With no serial named, zero probes is :class:`ProbeNotFound` and several are
    :class:`SeveralProbes` (never "the first one": that flashes the wrong slot).
    A named serial is passed through unchecked: the tool reports whether it
    answers, and sysfs may be unavailable (containers, macOS).
    """
    if wanted:
        return wanted
    return only_probe(
        [p.serial for p in probes],
        slot=slot,
        what=what,
        none=f"no {what} attached (checked USB for known VID:PIDs)",
    )

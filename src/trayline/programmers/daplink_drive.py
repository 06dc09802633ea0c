"""The guide's drag-and-drop: copy a .hex onto the Particle Debugger's DAPLINK drive (spec §10.3).

A Particle Debugger running DAPLink firmware shows up as a small USB drive
(label ``DAPLINK``). Copying an Intel HEX file onto it programs the target;
the drive then disconnects and mounts again, holding ``FAIL.TXT`` with the
reason if programming failed (and no ``FAIL.TXT`` if it worked).
``DETAILS.TXT`` names the probe's unique ID and DAPLink version. Gen 3 only;
about a minute for a full image.

What this backend does per write:

1. find the drive: the ``mount`` option, or every mount in ``/proc/mounts``
   whose root holds a DAPLink ``DETAILS.TXT`` — the one whose ``Unique ID`` is
   the probe ID (several debuggers mount as DAPLINK, DAPLINK1, …);
2. wrap the module(s) in one HEX (:mod:`trayline.core.hexrecords`) and
   copy it onto the drive, ``fsync`` so the bytes really reach the probe;
3. wait until the drive has come back (``DETAILS.TXT`` readable again) and the
   copied file is gone, or time out (:class:`ToolTimeout`, default 180 s);
4. read ``FAIL.TXT`` and map its reason to the protocol's errors.

Capabilities are honest: the drive only writes. It cannot read the device ID,
memory or modules, and cannot verify; ``write_module`` reports
``verified=False``, so the flashing service must read back over another route
(or record the unit as unverified). ``write_modules`` puts a whole bundle in
one drop, which is how the guide uses it.

Options: ``mount`` (mount point), ``timeout`` (seconds per drop, default 180).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Unpack

from trayline.core.hexrecords import encode_hex_blocks
from trayline.core.ids import DeviceId
from trayline.programmers.base import (
    Capability,
    DeviceNotAnswering,
    ModuleOnDevice,
    ProbeInfo,
    ProbeNotFound,
    ProgrammerError,
    ProtectedDevice,
    TargetNotHalted,
    ToolFailed,
    ToolTimeout,
    VerifyFailed,
    WriteResult,
)
from trayline.programmers.lifecycle import ClosesOnExit
from trayline.programmers.opening import OnSlot, SlotArgs, only_probe, slot_args
from trayline.programmers.registry import Backend, BadBackendOption, OpenRequest
from trayline.programmers.targets import NRF52840, mcu_for
from trayline.programmers.tool import ErrorPattern, match_failure

__all__ = [
    "BACKENDS",
    "DaplinkDrive",
    "DaplinkProgrammer",
    "find_drives",
    "open_daplink",
    "parse_details",
]

CAPABILITIES = frozenset({Capability.WRITE_MODULE})
PROC_MOUNTS = Path("/proc/mounts")

# FAIL.TXT reasons (DAPLink's error strings, matched loosely; wording varies by version).
# FAIL.TXT is folded onto one line first, so ``{0}`` is the whole reason.
_FAIL_REASONS: tuple[ErrorPattern, ...] = (
    ErrorPattern.of(r"protect|locked|secur", ProtectedDevice, "DAPLink FAIL.TXT: {0}"),
    ErrorPattern.of(
        r"reset/halt|halt the target|initialize the target|target.*not respond",
        TargetNotHalted,
        "DAPLink FAIL.TXT: {0}",
    ),
    ErrorPattern.of(r"verif", VerifyFailed, "DAPLink FAIL.TXT: {0}"),
    ErrorPattern.of(r"timed out|timeout", DeviceNotAnswering, "DAPLink FAIL.TXT: {0}"),
)


class DaplinkDrive:
    """One mounted DAPLINK drive and what its DETAILS.TXT says."""

    def __init__(self, mount: Path, details: dict[str, str]) -> None:
        self.mount = mount
        self.details = details

    @property
    def unique_id(self) -> str:
        return self.details.get("Unique ID", "")

    @property
    def version(self) -> str:
        return self.details.get("Interface Version", self.details.get("Version", ""))


def parse_details(text: str) -> dict[str, str]:
    """``Key: value`` lines of DETAILS.TXT (comment lines starting with ``#`` skipped)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        found[key.strip()] = value.strip()
    return found


def _read_drive(mount: Path) -> DaplinkDrive | None:
    try:
        text = (mount / "DETAILS.TXT").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    details = parse_details(text)
    return DaplinkDrive(mount, details) if "Unique ID" in details else None


def _mount_points(mounts_file: Path) -> list[Path]:
    try:
        lines = mounts_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    points: list[Path] = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("vfat", "msdos", "fuseblk", "exfat"):
            points.append(Path(fields[1].replace("\\040", " ")))
    return points


def find_drives(mounts_file: Path = PROC_MOUNTS) -> list[DaplinkDrive]:
    """Every mounted DAPLink drive (a FAT mount whose root holds a DAPLink DETAILS.TXT)."""
    drives = [d for p in _mount_points(mounts_file) if (d := _read_drive(p)) is not None]
    return sorted(drives, key=lambda d: d.unique_id)


class DaplinkProgrammer(OnSlot, ClosesOnExit):
    """Writes by copying HEX files onto one DAPLINK drive (nothing is held open between drops)."""

    name = "daplink-drive"
    capabilities = CAPABILITIES

    def __init__(
        self,
        probe: ProbeInfo,
        *,
        mount: Path,
        timeout: float = 180.0,
        poll: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        **slot: Unpack[SlotArgs],
    ) -> None:
        super().__init__(probe, **slot)
        if mcu_for(self.platform_id) is not NRF52840:
            raise BadBackendOption(
                f"{self.slot}: DAPLink drag-and-drop is for Gen 3 (nRF52840) only"
            )
        self.mount = mount
        self.timeout = timeout
        self.poll = poll
        self._clock = clock
        self._drops = 0

    def _cannot(self, what: str) -> ProgrammerError:
        return ProgrammerError(
            f"the DAPLink drive cannot {what}: use an SWD backend (openocd, pyocd) for that",
            slot=self.slot,
        )

    def read_device_id(self) -> DeviceId:
        raise self._cannot("read the device ID")

    def read_memory(self, address: int, length: int) -> bytes:
        raise self._cannot("read memory")

    def read_modules(self) -> list[ModuleOnDevice]:
        raise self._cannot("list modules")

    def verify(self, address: int, data: bytes) -> bool:
        raise self._cannot("read back to verify")

    def reset(self) -> None:
        """DAPLink resets the target after every drop; nothing to do."""

    def write_module(self, address: int, data: bytes, *, verify: bool = True) -> WriteResult:
        return self.write_modules([(address, data)])[0]

    def write_modules(self, blocks: Sequence[tuple[int, bytes]]) -> list[WriteResult]:
        """One drop holding every block; results are unverified (the drive cannot read back)."""
        for address, data in blocks:
            if address < 0x1000 or address + len(data) > 0x100000:
                raise ProgrammerError(
                    f"refusing to drop {len(data)} bytes at {address:#010x}: outside the "
                    "nRF52840's writable flash (0x1000-0x100000)",
                    slot=self.slot,
                )
        started = self._clock()
        self._drop(encode_hex_blocks(blocks))
        seconds = self._clock() - started
        return [
            WriteResult(a, len(d), seconds, False, f"daplink-drive {self.probe.probe_id}")
            for a, d in blocks
        ]

    def _drop(self, hex_text: str) -> None:
        drive = _read_drive(self.mount)
        if drive is None:
            raise ProbeNotFound(f"no DAPLINK drive mounted at {self.mount}", slot=self.slot)
        self._drops += 1
        target = self.mount / f"TRAYLINE{self._drops:03d}.HEX"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, hex_text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._wait_for_remount(target)
        self._check_fail_txt()

    def _wait_for_remount(self, copied: Path) -> None:
        """Done when the copied file is gone and, after that, the drive is back (DETAILS.TXT).

        The order matters: checking the drive first could see the old mount an
        instant before it disconnects, then the file gone, and call a drop done
        before the drive has come back with its FAIL.TXT.
        """
        deadline = self._clock() + self.timeout
        while self._clock() < deadline:
            if not copied.exists() and _read_drive(self.mount) is not None:
                return
            time.sleep(self.poll)
        raise ToolTimeout(
            f"the DAPLINK drive at {self.mount} did not disconnect and come back within "
            f"{self.timeout:g} s (old DAPLink firmware? copy blocked?)",
            slot=self.slot,
        )

    def _check_fail_txt(self) -> None:
        try:
            reason = (self.mount / "FAIL.TXT").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ToolFailed(f"cannot read FAIL.TXT: {exc}", slot=self.slot) from exc
        text = " ".join(reason.split())
        error = match_failure(text, _FAIL_REASONS, slot=self.slot, transcript=reason)
        raise error or ToolFailed(f"DAPLink FAIL.TXT: {text}", slot=self.slot, transcript=reason)


def _choose(drives: list[DaplinkDrive], probe_id: str, slot: str) -> DaplinkDrive:
    if probe_id:
        for drive in drives:
            if drive.unique_id.lower() == probe_id.lower():
                return drive
        raise ProbeNotFound(f"no DAPLINK drive with Unique ID {probe_id} is mounted", slot=slot)
    only_probe(
        [d.unique_id for d in drives],
        slot=slot,
        what="DAPLINK drive",
        none="no DAPLINK drive is mounted",
        several="{count} DAPLINK drives mounted ({ids}); name one",
    )
    return drives[0]


def open_daplink(request: OpenRequest, *, mounts_file: Path = PROC_MOUNTS) -> DaplinkProgrammer:
    """The registry's ``open``: the ``mount`` option, or the drive whose Unique ID is the probe."""
    configured = request.options.get("mount")
    if configured:
        drive = _read_drive(Path(configured))
        if drive is None:
            raise ProbeNotFound(f"no DAPLINK drive mounted at {configured}", slot=request.slot)
        if request.probe_id and drive.unique_id.lower() != request.probe_id.lower():
            raise ProbeNotFound(
                f"the drive at {configured} is probe {drive.unique_id}, not {request.probe_id}",
                slot=request.slot,
            )
    else:
        drive = _choose(find_drives(mounts_file), request.probe_id, request.slot)
    return DaplinkProgrammer(
        ProbeInfo("daplink-drive", drive.unique_id, f"DAPLink {drive.version}", str(drive.mount)),
        **slot_args(request),
        mount=drive.mount,
        timeout=request.number("timeout", 180.0),
    )


def _list() -> list[ProbeInfo]:
    return [
        ProbeInfo("daplink-drive", d.unique_id, f"DAPLink {d.version}", str(d.mount))
        for d in find_drives()
    ]


BACKENDS = (
    Backend(
        name="daplink-drive",
        open=open_daplink,
        list_probes=_list,
        capabilities=CAPABILITIES,
        description="Particle Debugger drag-and-drop: copy a .hex onto the DAPLINK drive (Gen 3)",
        options=frozenset({"mount", "timeout"}),
    ),
)

"""Putting a bundle on a device: read what is there, write what differs, verify, record.

This is where a line loses the most time and makes its most expensive
mistakes, so the service is deliberately plain:

1. Re-hash the bundle's files against its manifest (:func:`load_bundle`); a file
   changed on disk refuses the flash before the device is touched.
2. Ask the device who it is (from silicon) and what it holds
   (:meth:`Programmer.read_modules`), refuse a device of another platform.
3. Plan (:func:`plan_flash`, pure): every module the device lacks, holds in
   another version or build, or holds damaged is written; the rest is skipped
   (``full=True`` writes everything). A Gen 3 user part built for Device OS
   3.1.0+ also invalidates an old 128 KB user part at 0xD4000, which would
   otherwise keep running (device-side.md §2.1). The Tracker's NCP is written
   only by a backend that can (USB control requests) and only where Device OS
   still allows it (< 5.6.0, §6); otherwise it is reported, not silently
   dropped.
4. Record the intent in the store, *then* write, in the bundle's order, each
   module verified (the backend's read-back, or the tool's own verify).
5. Reset, read the module list back, and check it matches the bundle: a bit
   flipped on write or a module the bootloader refused shows up here, and the
   record says ``failed`` — the unit is not flashed.

The planning and read-back checks are pure functions over data, so the station,
the CLI and the benchmark share one verdict. The programmer is synchronous (one
thread per slot); nothing here knows which backend it talks to.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trayline.core.manifest import BundleInfo, ManifestEntry
from trayline.core.modules import ModuleFlag, ModuleFunction, function_name
from trayline.core.platforms import (
    NRF52840_PLATFORM_IDS,
    USER_PART_COMPAT_ADDRESS,
    USER_PART_GEN3_ADDRESS,
    platform_name,
)
from trayline.firmware.bundle import BundleError, bundle_dir, get_bundle, load_bundle
from trayline.firmware.diff import ReportedModule, modules_to_write
from trayline.programmers.base import (
    Capability,
    ModuleOnDevice,
    Programmer,
    ProgrammerError,
    VerifyFailed,
)
from trayline.programmers.scan import scan_modules
from trayline.store import bundles
from trayline.store.db import Store
from trayline.store.flash_records import (
    FlashRecordView,
    InTransaction,
    begin_flash,
    finish_flash,
)

__all__ = [
    "COMPAT_INVALIDATE_BYTES",
    "NCP_UPDATES_REMOVED",
    "FlashFailed",
    "FlashReport",
    "PlannedModule",
    "flash_bundle",
    "plan_flash",
    "platform_problem",
    "readback_problems",
]

COMPAT_INVALIDATE_BYTES = 4096
"""What particle-cli writes (0xFF) at 0xD4000 to retire a 128 KB user part (§2.1)."""

NCP_UPDATES_REMOVED = 5600
"""System module versions from 5.6.0 on: Tracker NCP updates are compiled out (§6).

System module numbers step to the next hundred every minor release
(``core.versions``), so every 5.6.x prerelease or release is >= 5600.
"""

WRITE, SKIP, PENDING = "write", "skip", "pending"


@dataclass(frozen=True, slots=True)
class PlannedModule:
    """One manifest entry and what the flash will do with it, and why."""

    entry: ManifestEntry
    action: str
    reason: str

    def describe(self) -> dict[str, Any]:
        e = self.entry
        return {
            "function": function_name(e.function) or str(e.function),
            "index": e.index,
            "version": e.version,
            "address": f"{e.address:#010x}",
            "sha256": e.module_sha256,
            "file": e.file_name,
            "action": self.action,
            "reason": self.reason,
        }


def _is_ncp(entry: ManifestEntry) -> bool:
    return entry.function == ModuleFunction.NCP_FIRMWARE


def _ncp_allowed(system_version: int | None) -> bool:
    return system_version is None or system_version < NCP_UPDATES_REMOVED


def plan_flash(
    entries: Sequence[ManifestEntry],
    on_device: Sequence[ModuleOnDevice] | None,
    *,
    full: bool = False,
    can_update_ncp: bool = False,
    system_version: int | None = None,
) -> list[PlannedModule]:
    """What to do with each entry, in the bundle's flashing order. Pure.

    ``on_device`` is ``None`` when the backend cannot read modules (a
    drag-and-drop drive): everything is written. A module the device holds
    with a failed integrity check is reported as absent, so it is rewritten.
    """
    ordered = sorted(entries, key=lambda e: e.position)
    if on_device is None or full:
        why = "--full" if full else "the backend cannot read the device's modules"
        differing = {e.key: why for e in ordered}
    else:
        reported = [
            ReportedModule(m.function, m.index, m.version, m.sha256) for m in on_device if m.valid
        ]
        differing = {m.entry.key: m.reason for m in modules_to_write(ordered, reported)}
        for m in on_device:
            if not m.valid and m.key in differing:
                differing[m.key] = "the copy on the device is damaged (CRC/SHA)"
    plan: list[PlannedModule] = []
    for entry in ordered:
        reason = differing.get(entry.key)
        if reason is None:
            plan.append(PlannedModule(entry, SKIP, "already on the device"))
        elif _is_ncp(entry) and not can_update_ncp:
            plan.append(PlannedModule(entry, PENDING, "the NCP is written over USB only (§6)"))
        elif _is_ncp(entry) and not _ncp_allowed(system_version):
            plan.append(
                PlannedModule(entry, PENDING, "NCP updates are compiled out of Device OS 5.6.0+")
            )
        else:
            plan.append(PlannedModule(entry, WRITE, reason))
    return plan


def needs_compat_invalidation(
    platform_id: int, plan: Sequence[PlannedModule], on_device: Sequence[ModuleOnDevice] | None
) -> bool:
    """True when a 256 KB user part is written while a 128 KB one still sits at 0xD4000. Pure."""
    if platform_id not in NRF52840_PLATFORM_IDS or not on_device:
        return False
    writes_new_user = any(
        p.action == WRITE
        and p.entry.function == ModuleFunction.USER_PART
        and p.entry.address == USER_PART_GEN3_ADDRESS
        for p in plan
    )
    old_user = any(
        m.function == ModuleFunction.USER_PART and m.address == USER_PART_COMPAT_ADDRESS
        for m in on_device
    )
    return writes_new_user and old_user


def platform_problem(bundle_platform: int, on_device: Sequence[ModuleOnDevice]) -> str | None:
    """Why this device must not get this bundle, or ``None``. Pure.

    The NCP module carries the host's platform id too, so every valid module
    counts: one module of another platform means another kind of device.
    """
    others = sorted({m.platform_id for m in on_device if m.valid} - {bundle_platform})
    if not others:
        return None
    found = ", ".join(f"{platform_name(p) or 'unknown'} ({p})" for p in others)
    want = f"{platform_name(bundle_platform) or 'unknown'} ({bundle_platform})"
    return f"the device runs modules for {found}; the bundle is for {want}"


def readback_problems(
    expected: Sequence[ManifestEntry], on_device: Sequence[ModuleOnDevice]
) -> list[str]:
    """How the modules read back after reset differ from what should be there. Pure."""
    by_key: dict[tuple[int, int], ModuleOnDevice] = {}
    for m in on_device:
        by_key.setdefault(m.key, m)
    problems: list[str] = []
    for entry in expected:
        have = by_key.get(entry.key)
        label = entry.label()
        if have is None:
            problems.append(f"{label}: not found on the device after reset")
        elif not have.valid:
            problems.append(f"{label}: on the device but its CRC/SHA check fails")
        elif have.version != entry.version:
            problems.append(f"{label}: the device reports version {have.version}")
        elif have.sha256 is not None and have.sha256.lower() != entry.module_sha256:
            problems.append(f"{label}: the device reports another build (SHA-256 differs)")
    return problems


class FlashFailed(ProgrammerError):
    """The flash did not end with the bundle verified on the device; the record says why."""

    def __init__(self, message: str, *, slot: str | None, record: FlashRecordView | None) -> None:
        super().__init__(message, slot=slot)
        self.record = record


@dataclass(slots=True)
class FlashReport:
    """What ``trayline device flash --json`` prints and the station keeps."""

    device_id: str
    bundle: str
    digest: str
    role: str | None
    backend: str
    probe: str
    written: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    invalidated: list[dict[str, Any]] = field(default_factory=list)
    """Flash retired so an old image cannot keep running (the 128 KB user part)."""
    bytes_written: int = 0
    seconds: float = 0.0
    device_seconds: float = 0.0
    verified: bool = False
    record_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "bundle": self.bundle,
            "digest": self.digest,
            "role": self.role,
            "backend": self.backend,
            "probe": self.probe,
            "written": self.written,
            "skipped": self.skipped,
            "pending": self.pending,
            "invalidated": self.invalidated,
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "verified": self.verified,
            "record_id": self.record_id,
        }


def _found_by_content(
    programmer: Programmer,
    entries: Sequence[ManifestEntry],
    images: dict[int, bytes],
    modules: list[ModuleOnDevice],
) -> list[ModuleOnDevice]:
    """Add the modules whose prefix is not written to flash, when their bytes are there.

    A radio-stack module carries DROP_MODULE_INFO: its prefix never reaches the
    device, so no scan can find it. Where the backend can read memory, the
    bytes at its address are compared with the image instead — the device holds
    this module exactly when they are equal.
    """
    if Capability.READ_MEMORY not in programmer.capabilities:
        return modules
    known = {m.key for m in modules if m.valid}
    out = list(modules)
    for e in entries:
        if e.key in known or not e.flags & ModuleFlag.DROP_MODULE_INFO:
            continue
        image = images[e.position]
        if programmer.read_memory(e.address, len(image)) == image:
            out.append(
                ModuleOnDevice(
                    e.function,
                    e.index,
                    e.version,
                    e.address,
                    len(image),
                    e.platform_id,
                    e.module_sha256,
                    True,
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class _Prepared:
    info: BundleInfo
    paths: tuple[Path, ...]
    images: dict[int, bytes]


_prepared: dict[tuple[str, str, str, str], _Prepared] = {}
_prepared_lock = threading.Lock()
_hashed: dict[Path, tuple[int, int, int, int]] = {}
"""Stored file → its (inode, size, mtime, ctime) when it last hashed to its manifest SHA."""

RACY_NS = 2_000_000_000
"""Any write moves a file's ctime to *now* (no tool sets it back), so a file whose stat is
unchanged since it hashed right holds those bytes — unless the write fell in the hash's
timestamp tick: a file changed less than this before its hash is hashed again (git's rule)."""


def _changed(path: Path, sha256: str) -> str | None:
    """``None`` when the stored file still holds what the manifest says; else what it holds."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    mark = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _prepared_lock:
        if _hashed.get(path) == mark:
            return None
    hashed_at = time.time_ns()
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if digest != sha256:
        return digest
    if hashed_at - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
        with _prepared_lock:
            _hashed[path] = mark
    return None


def _prepare(store: Store, name: str) -> tuple[BundleInfo, dict[int, bytes]]:
    """The bundle's manifest and flash images, its files checked at every use.

    The first use in a process loads the bundle fully (:func:`load_bundle`:
    every file hashed and parsed). A bundle never changes once created, so
    later uses of the same manifest (same database, file store, name and digest) — a
    station flashing hundreds of units — keep the images and only check the
    stored files: each is re-hashed unless its inode, size and times are those
    it had when it last hashed right (:func:`_changed`). A file changed on disk
    is still refused before the device is touched.
    """
    digest = bundles.bundle_digest(store, name)
    if digest is None:
        get_bundle(store, name)  # raises the BundleError that names the known bundles
    key = (store.url, str(bundle_dir(store.url)), name, digest or "")
    with _prepared_lock:
        cached = _prepared.get(key)
    if cached is None:
        loaded = load_bundle(store, name)
        entries = loaded.info.entries
        images = {e.position: p.image() for e, p in zip(entries, loaded.placements, strict=True)}
        cached = _Prepared(loaded.info, loaded.paths, images)
        with _prepared_lock:
            _prepared[key] = cached
        return cached.info, cached.images
    for entry, path in zip(cached.info.entries, cached.paths, strict=True):
        digest = _changed(path, entry.file_sha256)
        if digest is not None:
            with _prepared_lock:
                _prepared.pop(key, None)
            raise BundleError(
                f"bundle {name!r} refused: {entry.file_name}: stored file {path} changed on "
                f"disk (SHA-256 {digest}, manifest says {entry.file_sha256})"
            )
    return cached.info, cached.images


def _write_verified(
    programmer: Programmer, address: int, image: bytes, label: str, slot: str | None
) -> tuple[int, float]:
    """Write one image and make sure it verified; returns (bytes, device seconds)."""
    result = programmer.write_module(address, image, verify=True)
    verified = result.verified
    if not verified and Capability.VERIFY in programmer.capabilities:
        verified = programmer.verify(address, image)
    if not verified:
        raise VerifyFailed(f"{label} at {address:#010x}: read-back differs", slot=slot)
    return result.bytes_written, result.seconds


def flash_bundle(
    store: Store,
    programmer: Programmer,
    bundle_name: str,
    *,
    role: str | None = None,
    unit_id: int | None = None,
    slot: str | None = None,
    full: bool = False,
    then: Callable[[FlashReport], InTransaction] | None = None,
    with_intent: InTransaction | None = None,
) -> FlashReport:
    """Put ``bundle_name`` on the device behind ``programmer`` and record it.

    Raises :class:`FlashFailed` (with the completed record) when verification
    or the read-back fails, and lets other :class:`ProgrammerError` s through
    after recording them; ``BundleError`` before the device is touched.

    ``then`` gives, for a verified flash, the writes that follow from it (the
    station's unit status): they go into the transaction that records the flash
    as done — one disk flush for both (:func:`finish_flash` on what happens if
    they fail). ``with_intent`` goes into the transaction that records the intent,
    before the first byte (:func:`begin_flash`).
    """
    started = time.perf_counter()
    info, images = _prepare(store, bundle_name)
    caps = programmer.capabilities
    device_id = str(programmer.read_device_id())
    on_device = None
    if Capability.READ_MODULES in caps:
        found = _modules(programmer, info.platform_id, check_integrity=not full)
        on_device = found if full else _found_by_content(programmer, info.entries, images, found)
    if on_device is not None and (problem := platform_problem(info.platform_id, on_device)):
        raise FlashFailed(f"{device_id}: {problem}; nothing written", slot=slot, record=None)
    plan = plan_flash(
        info.entries,
        on_device,
        full=full,
        can_update_ncp=Capability.NCP_UPDATE in caps,
        system_version=info.system_version,
    )
    invalidate = needs_compat_invalidation(info.platform_id, plan, on_device)
    report = FlashReport(
        device_id, info.name, info.digest, role, programmer.name, programmer.probe.probe_id
    )
    record_id = begin_flash(
        store,
        device_id=device_id,
        bundle_name=info.name,
        bundle_digest=info.digest,
        backend=programmer.name,
        probe_id=programmer.probe.probe_id,
        planned=[p.describe() for p in plan],
        unit_id=unit_id,
        role=role,
        slot=slot,
        full=full,
        also=with_intent,
    )
    report.record_id = record_id
    try:
        _execute(programmer, plan, images, invalidate, report, slot)
        _check_readback(programmer, info.platform_id, plan, on_device, slot)
    except ProgrammerError as exc:
        report.seconds = time.perf_counter() - started
        view = _finish(store, record_id, report, plan, error=str(exc))
        if isinstance(exc, FlashFailed):
            exc.record = view
            raise
        if isinstance(exc, VerifyFailed):
            raise FlashFailed(str(exc.args[0]), slot=None, record=view) from exc
        raise
    report.verified = True
    report.seconds = time.perf_counter() - started
    _finish(store, record_id, report, plan, error=None, also=then(report) if then else None)
    return report


def _execute(
    programmer: Programmer,
    plan: Sequence[PlannedModule],
    images: dict[int, bytes],
    invalidate_compat: bool,
    report: FlashReport,
    slot: str | None,
) -> None:
    if invalidate_compat:
        blank = b"\xff" * COMPAT_INVALIDATE_BYTES
        written, secs = _write_verified(
            programmer, USER_PART_COMPAT_ADDRESS, blank, "old 128 KB user part", slot
        )
        report.bytes_written += written
        report.device_seconds += secs
        report.invalidated.append(
            {
                "what": "old 128 KB user part",
                "address": f"{USER_PART_COMPAT_ADDRESS:#010x}",
                "bytes": written,
                "reason": "a 256 KB user part at 0xB4000 is ignored while one sits at 0xD4000",
            }
        )
    for step in plan:
        described = step.describe()
        if step.action == SKIP:
            report.skipped.append(described)
            continue
        if step.action == PENDING:
            report.pending.append(described)
            continue
        image = images[step.entry.position]
        written, secs = _write_verified(
            programmer, step.entry.address, image, step.entry.label(), slot
        )
        described.update(bytes=written, seconds=round(secs, 3))
        report.written.append(described)
        report.bytes_written += written
        report.device_seconds += secs


def _modules(
    programmer: Programmer, platform_id: int, *, check_integrity: bool
) -> list[ModuleOnDevice]:
    """The modules on the device; with raw memory access, integrity checked only if asked.

    Checking a module's CRC means reading all of it (a second or more per
    module at SWD read speeds), which is worth it before a smart flash — a
    damaged module must be rewritten — but not when every byte is about to be
    written anyway, nor after reset, when each written module was just read
    back byte for byte.
    """
    if Capability.READ_MEMORY in programmer.capabilities:
        return scan_modules(
            programmer.read_memory, platform_id, full=check_integrity, softdevice=True
        )
    return programmer.read_modules()


def _check_readback(
    programmer: Programmer,
    platform_id: int,
    plan: Sequence[PlannedModule],
    before: Sequence[ModuleOnDevice] | None,
    slot: str | None,
) -> None:
    """Reset, then check every module the bundle puts on the device is there and runs.

    A module without a prefix on flash (the SoftDevice) cannot be listed; it
    counts as present when it was verified byte for byte in this flash or
    matched by content before it.
    """
    caps = programmer.capabilities
    if Capability.RESET in caps:
        programmer.reset()
    if Capability.READ_MODULES not in caps:
        return
    after = _modules(programmer, platform_id, check_integrity=False)
    listed = {m.key for m in after}
    confirmed = {m.key: m for m in before or () if m.valid}
    for step in plan:
        e = step.entry
        if e.key in listed or not e.flags & ModuleFlag.DROP_MODULE_INFO:
            continue
        if step.action == WRITE or e.key in confirmed:
            after.append(
                ModuleOnDevice(
                    e.function,
                    e.index,
                    e.version,
                    e.address,
                    e.size,
                    e.platform_id,
                    e.module_sha256,
                    True,
                )
            )
    expected = [p.entry for p in plan if p.action != PENDING]
    problems = readback_problems(expected, after)
    if problems:
        raise FlashFailed("read-back after reset: " + "; ".join(problems), slot=slot, record=None)


def _finish(
    store: Store,
    record_id: int,
    report: FlashReport,
    plan: Sequence[PlannedModule],
    *,
    error: str | None,
    also: InTransaction | None = None,
) -> FlashRecordView:
    done = {(m["function"], m["index"]) for m in report.written}
    modules = [
        {**d, "done": (d["function"], d["index"]) in done} for d in (p.describe() for p in plan)
    ]
    modules += [{**item, "action": "invalidate", "done": True} for item in report.invalidated]
    return finish_flash(
        store,
        record_id,
        status="failed" if error else "done",
        modules=modules,
        bytes_written=report.bytes_written,
        seconds=report.seconds,
        verified=error is None,
        error=error,
        also=also,
    )

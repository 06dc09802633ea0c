"""A virtual tray: a folder that holds a tray's devices, shared safely by several processes.

Layout of ``DIR`` (docs/virtual.md)::

    tray.csv          Device ID, Serial Number, ICCID — the list Particle emails with a tray
    stickers.txt      one data-matrix text per unit: "SERIAL SECRET" (Gen 3) or "SERIAL" (Gen 2)
    devices.json      the contract: identities, faults, readings (edited by other tools)
    ports.json        {device_id: "/dev/pts/N"} while `trayline virtual serve DIR` runs
    devices/<id>/flash.bin    the internal flash image (1 MiB, from the flash base address)
    devices/<id>/dct.bin      Gen 3 DCT view (DFU alt 1, 16 KB)
    devices/<id>/state.json   mode, UICR words, fault counters, NCP version
    devices/<id>/lock         fcntl lock: one process at a time changes this device

What one process flashed, the next one reads: every change happens inside
:meth:`Tray.session`, which takes the device's exclusive ``flock``, loads the
device from its files, lets the caller act, and writes back what changed with
:func:`trayline.durable.write_atomically` (temp file, fsync, rename) — so a
second process never sees half an image, and a process killed mid-session
leaves the old one. ``devices.json`` is re-read and validated on every load,
so an edit made between two operations takes effect at the next one.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trayline.core.skus import Sku
from trayline.core.versions import InvalidVersion, SemVer
from trayline.durable import write_atomically
from trayline.virtual.device import DeviceMode, DeviceState, Faults, VirtualDevice
from trayline.virtual.factory import (
    factory_device_os,
    factory_modules,
    install_module,
    ncp_version_for,
)
from trayline.virtual.identity import make_identity
from trayline.virtual.memory import Flash, geometry_for
from trayline.virtual.records import (
    DeviceRecord,
    TrayFileError,
    dump_records,
    parse_records,
    read_records,
)

__all__ = ["FactoryOptions", "Tray", "TrayFileError"]

DEVICES_JSON = "devices.json"
PORTS_JSON = "ports.json"


@dataclass(frozen=True, slots=True)
class FactoryOptions:
    """How fresh devices start.

    ``device_os``: the release in flash (``None``: :func:`factory_device_os`
    for the SKU); ``blank``: erased flash instead of Device OS + Tinker (a chip
    straight from assembly); ``mode``: force a start mode instead of the boot
    rule (Gen 3 below 4.0 with setup not done comes up listening).
    """

    device_os: str | None = None
    blank: bool = False
    mode: DeviceMode | None = None


def _state_to_json(state: DeviceState) -> dict[str, Any]:
    return {
        "mode": str(state.mode),
        "uicr": {f"{k:#010x}": v for k, v in sorted(state.uicr.items())},
        "connect_failures_used": state.connect_failures_used,
        "bit_flips_used": state.bit_flips_used,
        "ncp_version": state.ncp_version,
        "claimed": state.claimed,
        "boots": state.boots,
        "generation": state.generation,
    }


def _state_bytes(state: DeviceState) -> bytes:
    return (json.dumps(_state_to_json(state), indent=2) + "\n").encode()


def _state_from_json(raw: dict[str, Any], where: str) -> DeviceState:
    try:
        return DeviceState(
            mode=DeviceMode(raw.get("mode", "normal")),
            uicr={int(k, 16): int(v) for k, v in raw.get("uicr", {}).items()},
            connect_failures_used=int(raw.get("connect_failures_used", 0)),
            bit_flips_used=int(raw.get("bit_flips_used", 0)),
            ncp_version=raw.get("ncp_version"),
            claimed=bool(raw.get("claimed", False)),
            boots=int(raw.get("boots", 0)),
            generation=int(raw.get("generation", 0)),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise TrayFileError(f"{where}: bad device state ({exc})") from None


_DEVICE_CACHE: dict[Path, dict[str, tuple[tuple[int, bytes], VirtualDevice]]] = {}


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What a session started from, to write back only what changed."""

    image: bytes
    dct: bytes
    state: bytes
    faults: Faults

    @classmethod
    def of(cls, device: VirtualDevice) -> _Snapshot:
        state = _state_bytes(device.state)
        return cls(device.flash.image(), bytes(device.dct), state, replace(device.faults))


class Tray:
    """The devices of one tray folder. Cheap to construct; every read goes to the files."""

    def __init__(self, folder: Path | str, *, sync: bool = True) -> None:
        self.folder = Path(folder)
        self.sync = sync
        self._records: tuple[bytes, list[DeviceRecord]] | None = None
        # Shared by every Tray of this folder in the process: a programmer opened per unit
        # still finds the device it saved last time (keys make stale entries miss).
        self._devices = _DEVICE_CACHE.setdefault(self.folder.resolve(), {})

    # -- files ---------------------------------------------------------------------------

    @property
    def devices_json(self) -> Path:
        return self.folder / DEVICES_JSON

    @property
    def ports_json(self) -> Path:
        return self.folder / PORTS_JSON

    def device_dir(self, device_id: str) -> Path:
        return self.folder / "devices" / device_id

    def flash_path(self, device_id: str) -> Path:
        return self.device_dir(device_id) / "flash.bin"

    def _records_bytes(self) -> tuple[bytes, list[DeviceRecord]]:
        """``devices.json`` as read now, validated once per distinct content."""
        try:
            data = self.devices_json.read_bytes()
        except FileNotFoundError:
            raise TrayFileError(
                f"{self.devices_json}: no such file (is this a virtual tray folder?)"
            ) from None
        except OSError as exc:
            raise TrayFileError(
                f"{self.devices_json}: cannot read ({exc.strerror or exc})"
            ) from None
        if self._records is None or self._records[0] != data:
            self._records = (data, parse_records(data, str(self.devices_json)))
        return self._records

    def records(self) -> list[DeviceRecord]:
        """``devices.json``, validated (raises :class:`TrayFileError` with one line).

        Re-read on every call (other tools edit it); validated again only when
        its bytes changed. Treat the records as read-only: change them with
        :meth:`update_record`.
        """
        return list(self._records_bytes()[1])

    def record(self, device_id: str) -> DeviceRecord:
        return self._record(device_id)[0]

    def _record(self, device_id: str) -> tuple[DeviceRecord, bytes]:
        """The device's record and the ``devices.json`` bytes it came from (one read)."""
        wanted = device_id.strip().lower()
        data, records = self._records_bytes()
        for record in records:
            if record.device_id == wanted:
                return record, data
        raise TrayFileError(f"{self.devices_json}: no device {device_id} in this tray")

    def device_ids(self) -> list[str]:
        return [r.device_id for r in self.records()]

    def ports(self) -> dict[str, str]:
        """``{device_id: pty path}`` published by a running ``trayline virtual serve``."""
        try:
            data = json.loads(self.ports_json.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise TrayFileError(f"{self.ports_json}: unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise TrayFileError(f"{self.ports_json}: expected an object of device ID -> port")
        return {str(k): str(v) for k, v in data.items()}

    def publish_ports(self, ports: dict[str, str]) -> None:
        write_atomically(self.ports_json, (json.dumps(ports, indent=2) + "\n").encode())

    # -- locking, loading, saving --------------------------------------------------------

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        try:
            handle = path.open("a+b")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+b")
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_state(self, device_id: str) -> dict[str, Any]:
        path = self.device_dir(device_id) / "state.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise TrayFileError(f"{path}: missing (the tray folder is incomplete)") from None
        except (OSError, ValueError) as exc:
            raise TrayFileError(f"{path}: unreadable device state ({exc})") from None
        if not isinstance(raw, dict):
            raise TrayFileError(f"{path}: expected a JSON object")
        return raw

    def _load(self, record: DeviceRecord, state_raw: dict[str, Any] | None = None) -> VirtualDevice:
        folder = self.device_dir(record.device_id)
        geometry = geometry_for(record.identity.platform_id)
        if state_raw is None:
            state_raw = self._read_state(record.device_id)
        try:
            image = (folder / "flash.bin").read_bytes()
            dct = (folder / "dct.bin").read_bytes()
        except FileNotFoundError as exc:
            raise TrayFileError(
                f"{exc.filename}: missing (the tray folder is incomplete)"
            ) from None
        except (OSError, ValueError) as exc:
            raise TrayFileError(f"{folder}: unreadable device files ({exc})") from None
        if len(image) != geometry.size:
            raise TrayFileError(
                f"{folder / 'flash.bin'}: {len(image)} bytes, expected {geometry.size}"
            )
        return VirtualDevice(
            record.identity,
            flash=Flash(geometry, image),
            dct=dct,
            state=_state_from_json(state_raw, str(folder / "state.json")),
            faults=replace(record.faults),
            readings=dict(record.readings),
        )

    def _save(self, device: VirtualDevice, before: _Snapshot | None) -> None:
        folder = self.device_dir(device.device_id)
        image = device.flash.image()
        if before is None or image != before.image:
            self._write(folder / "flash.bin", image)
        if before is None or bytes(device.dct) != before.dct:
            self._write(folder / "dct.bin", bytes(device.dct))
        if before is not None and device.faults != before.faults:
            self.update_record(device.device_id, faults=device.faults)
        state = _state_bytes(device.state)
        if before is None or state != before.state or image != before.image:
            device.state.generation += 1  # what readers' caches key on
            self._write(folder / "state.json", _state_bytes(device.state))

    def _current(self, record: DeviceRecord, records: bytes) -> VirtualDevice:
        """The device as its files hold it now; call with the device's lock held.

        Reuses the last device seen while the state generation and
        ``devices.json`` (``records``: its bytes, as read for this operation) are
        unchanged, so a console or a probe reading often costs a small file read,
        not 1 MiB and a module scan.
        """
        state_raw = self._read_state(record.device_id)
        key = (int(state_raw.get("generation", 0)), records)
        cached = self._devices.get(record.device_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        device = self._load(record, state_raw)
        self._devices[record.device_id] = (key, device)
        return device

    def _write(self, path: Path, data: bytes) -> None:
        """Replace a device file atomically; with ``sync=False`` skip the fsync.

        The rename alone already keeps other processes from seeing a torn file;
        the fsync adds survival of a power cut, at about 10 ms per 1 MiB image.
        Benchmarks that measure trayline's own overhead open trays with
        ``sync=False`` (backend option ``sync=0``).
        """
        if self.sync:
            write_atomically(path, data)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, device_id: str) -> VirtualDevice:
        """A snapshot of the device (under its lock, so never half-written); not saved back.

        Read-only and possibly shared with later calls: change a device in a
        :meth:`session`.
        """
        record, records = self._record(device_id)
        with self._locked(self.device_dir(record.device_id) / "lock"):
            return self._current(record, records)

    @contextmanager
    def session(self, device_id: str) -> Iterator[VirtualDevice]:
        """Lock the device, load it, yield it, save what changed — even if the caller raised
        a device error after changing flash (a half-done write stays half-done, as on
        hardware). Other processes wait for the lock."""
        record, records = self._record(device_id)
        with self._locked(self.device_dir(record.device_id) / "lock"):
            device = self._current(record, records).copy()
            before = _Snapshot.of(device)
            try:
                yield device
            finally:
                self._save(device, before)
                key = (device.state.generation, self._records_bytes()[0])
                self._devices[record.device_id] = (key, device.copy())

    def update_record(self, device_id: str, **changes: Any) -> None:
        """Change one device's entry of ``devices.json`` (faults, readings) atomically."""
        with self._locked(self.folder / ".devices.lock"):
            records = read_records(self.devices_json)  # fresh objects: the cache stays intact
            for record in records:
                if record.device_id == device_id:
                    for name, value in changes.items():
                        setattr(record, name, value)
            write_atomically(self.devices_json, dump_records(records))

    # -- creating a tray -------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        folder: Path | str,
        sku: Sku,
        count: int,
        *,
        seed: int | None = None,
        options: FactoryOptions | None = None,
    ) -> Tray:
        """Make ``count`` fresh devices of ``sku`` in ``folder`` (which must not hold a tray)."""
        options = options or FactoryOptions()
        tray = cls(folder)
        if tray.devices_json.exists():
            raise TrayFileError(f"{tray.devices_json}: a tray already exists here")
        if count < 1:
            raise ValueError("count must be at least 1")
        try:
            release = (
                SemVer.parse(options.device_os) if options.device_os else factory_device_os(sku)
            )
        except InvalidVersion as exc:
            raise ValueError(str(exc)) from None
        modules = [] if options.blank else factory_modules(sku.platform_id, release)
        rng = random.Random(seed)
        records: list[DeviceRecord] = []
        seen: set[str] = set()
        while len(records) < count:
            identity = make_identity(sku, rng)
            if identity.device_id in seen or identity.serial_number in seen:
                continue
            seen.update((identity.device_id, identity.serial_number))
            records.append(DeviceRecord(identity))
        for record in records:
            device = VirtualDevice(record.identity)
            device.write_factory_uicr()
            for module in modules:
                install_module(device, module)
            device.state.ncp_version = ncp_version_for(sku, release)
            device.boot()
            device.state.boots = 0
            if options.mode is not None:
                device.enter_mode(options.mode)
            tray._save(device, None)
        write_atomically(tray.folder / "tray.csv", tray_csv(records))
        write_atomically(tray.folder / "stickers.txt", stickers(records))
        write_atomically(tray.devices_json, dump_records(records))
        return tray


def tray_csv(records: list[DeviceRecord]) -> bytes:
    """The tray list as Particle emails it: ``Device ID,Serial Number,ICCID``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Device ID", "Serial Number", "ICCID"])
    for record in records:
        ident = record.identity
        writer.writerow([ident.device_id, ident.serial_number, ident.iccid])
    return buffer.getvalue().encode()


def stickers(records: list[DeviceRecord]) -> bytes:
    """What a scanner reads from each unit's data-matrix sticker, one per line."""
    lines = []
    for record in records:
        ident = record.identity
        secret = f" {ident.mobile_secret}" if ident.mobile_secret else ""
        lines.append(f"{ident.serial_number}{secret}\n")
    return "".join(lines).encode()

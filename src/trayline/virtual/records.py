"""``devices.json``: the documented contract of a virtual tray, read strictly, written atomically.

Other tools edit this file — tests switch faults on, a test plan adds
readings — so every read validates it again and a mistake is one line that
names the file, the device's index in the list and the field:

    tray/devices.json: device 3 (e00fce68…): faults.protected: expected true or false

The shape (docs/virtual.md): a JSON list of objects with ``device_id``,
``serial_number``, ``iccid``, ``imei``, ``sku``, ``platform_id``, ``faults``
(object) and ``readings`` (object), and optionally ``mobile_secret`` (Gen 3)
and ``cell_radio_version``. Unknown top-level keys are kept and ignored
(forward compatible); unknown *fault* names are refused, because a typo there
would silently test nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trayline.core.ids import DeviceId, Iccid, Imei, InvalidIdentifier, SerialNumber
from trayline.core.skus import UnknownSku, get_sku
from trayline.virtual.device import Faults
from trayline.virtual.identity import DeviceIdentity, id_register_bytes

__all__ = ["DeviceRecord", "TrayFileError", "dump_records", "parse_records"]


class TrayFileError(ValueError):
    """A tray file is missing, unreadable or breaks the contract; the message is one line."""


@dataclass(slots=True)
class DeviceRecord:
    """One entry of ``devices.json``: identity, faults, readings and any extra keys."""

    identity: DeviceIdentity
    faults: Faults = field(default_factory=Faults)
    readings: dict[str, object] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    def to_json(self) -> dict[str, Any]:
        ident = self.identity
        out: dict[str, Any] = {
            "device_id": ident.device_id,
            "serial_number": ident.serial_number,
            "iccid": ident.iccid,
            "imei": ident.imei,
            "mobile_secret": ident.mobile_secret,
            "sku": ident.sku,
            "platform_id": ident.platform_id,
            "cell_radio_version": ident.cell_radio_version,
            "faults": self.faults.to_dict(),
            "readings": self.readings,
        }
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out


_KNOWN = frozenset(
    {
        "device_id",
        "serial_number",
        "iccid",
        "imei",
        "mobile_secret",
        "sku",
        "platform_id",
        "cell_radio_version",
        "faults",
        "readings",
    }
)


class _Where:
    """Builds ``file: device N (id): field: problem`` messages."""

    def __init__(self, path: str, index: int, device_id: str = "") -> None:
        self.path, self.index, self.device_id = path, index, device_id

    def fail(self, name: str, problem: str) -> TrayFileError:
        who = f"device {self.index}" + (f" ({self.device_id})" if self.device_id else "")
        return TrayFileError(f"{self.path}: {who}: {name}: {problem}")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _faults(raw: object, where: _Where) -> Faults:
    if not isinstance(raw, dict):
        raise where.fail("faults", 'expected an object (e.g. {} or {"protected": true})')
    faults = Faults()
    for name, value in raw.items():
        key = f"faults.{name}"
        if name in ("never_answers", "protected"):
            if not isinstance(value, bool):
                raise where.fail(key, "expected true or false")
            setattr(faults, name, value)
        elif name == "swd_connect_failures":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise where.fail(key, "expected a count >= 0")
            faults.swd_connect_failures = value
        elif name == "flip_bit_on_write":
            if isinstance(value, bool) or (isinstance(value, int) and value >= 0):
                faults.flip_bit_on_write = value
            else:
                raise where.fail(key, "expected true/false or a count >= 0")
        elif name == "slow_console":
            if not _is_number(value) or value < 0:
                raise where.fail(key, "expected seconds >= 0")
            faults.slow_console = float(value)
        else:
            known = (
                "swd_connect_failures, flip_bit_on_write, never_answers, protected, slow_console"
            )
            raise where.fail(key, f"unknown fault (known: {known})")
    return faults


def _readings(raw: object, where: _Where) -> dict[str, object]:
    if not isinstance(raw, dict):
        raise where.fail("readings", "expected an object of name -> value")
    for name, value in raw.items():
        key = f"readings.{name}"
        if isinstance(value, str | bool) or _is_number(value):
            continue
        if not isinstance(value, dict):
            raise where.fail(key, 'expected a number, text, true/false or {"mean": m, "sd": s}')
        if not _is_number(value.get("mean")) or not _is_number(value.get("sd")):
            raise where.fail(key, 'expected "mean" and "sd" numbers')
        if value["sd"] < 0:
            raise where.fail(key, '"sd" must be >= 0')
        if "unit" in value and not isinstance(value["unit"], str):
            raise where.fail(key, '"unit" must be text')
        unknown = set(value) - {"mean", "sd", "unit"}
        if unknown:
            raise where.fail(key, f"unknown key {sorted(unknown)[0]!r} (allowed: mean, sd, unit)")
    return dict(raw)


def _text(item: dict[str, Any], name: str, where: _Where) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise where.fail(name, "missing" if value is None else "expected text")
    return value


def _identity(item: dict[str, Any], where: _Where) -> DeviceIdentity:
    try:
        device_id = DeviceId.parse(_text(item, "device_id", where))
        where.device_id = device_id
        sku = get_sku(_text(item, "sku", where))
    except InvalidIdentifier as exc:
        raise where.fail("device_id", str(exc)) from None
    except UnknownSku as exc:
        raise where.fail("sku", str(exc)) from None
    platform_id = item.get("platform_id")
    if platform_id != sku.platform_id:
        raise where.fail(
            "platform_id", f"{sku.name} is platform {sku.platform_id}, not {platform_id}"
        )
    try:
        id_register_bytes(platform_id, device_id)
    except ValueError as exc:
        raise where.fail("device_id", str(exc)) from None
    parsed: dict[str, str] = {}
    for name, parser in (("serial_number", SerialNumber), ("iccid", Iccid), ("imei", Imei)):
        try:
            parsed[name] = parser.parse(_text(item, name, where))
        except InvalidIdentifier as exc:
            raise where.fail(name, str(exc)) from None
    if parsed["serial_number"][:4] not in sku.serial_prefixes:
        prefixes = ", ".join(sku.serial_prefixes)
        raise where.fail("serial_number", f"a {sku.name} serial starts with {prefixes}")
    secret = item.get("mobile_secret")
    if secret is not None and not isinstance(secret, str):
        raise where.fail("mobile_secret", "expected text or null")
    radio = item.get("cell_radio_version", "")
    if not isinstance(radio, str):
        raise where.fail("cell_radio_version", "expected text")
    return DeviceIdentity(
        device_id=device_id,
        serial_number=parsed["serial_number"],
        iccid=parsed["iccid"],
        imei=parsed["imei"],
        mobile_secret=secret,
        sku=sku.name,
        platform_id=sku.platform_id,
        cell_radio_version=radio,
    )


def parse_records(text: str | bytes, path: str) -> list[DeviceRecord]:
    """Validate ``devices.json`` content; raises :class:`TrayFileError` (one line) on a problem."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrayFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise TrayFileError(f"{path}: expected a JSON list of devices, got {type(data).__name__}")
    records: list[DeviceRecord] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        where = _Where(path, index)
        if not isinstance(item, dict):
            raise TrayFileError(f"{path}: device {index}: expected an object")
        identity = _identity(item, where)
        if identity.device_id in seen:
            raise where.fail("device_id", f"same device as device {seen[identity.device_id]}")
        seen[identity.device_id] = index
        records.append(
            DeviceRecord(
                identity=identity,
                faults=_faults(item.get("faults", {}), where),
                readings=_readings(item.get("readings", {}), where),
                extra={k: v for k, v in item.items() if k not in _KNOWN},
            )
        )
    return records


def dump_records(records: list[DeviceRecord]) -> bytes:
    return (json.dumps([r.to_json() for r in records], indent=2) + "\n").encode()


def read_records(path: Path) -> list[DeviceRecord]:
    """Read and validate ``devices.json`` at ``path``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TrayFileError(f"{path}: no such file (is this a virtual tray folder?)") from None
    except OSError as exc:
        raise TrayFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_records(data, str(path))

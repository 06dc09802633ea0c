"""Typed answers from the Particle Cloud.

The docs warn that fields may be added or removed at any time, so every parser
here reads the fields trayline uses, defaults what is missing, ignores the rest
and keeps the raw object in ``raw`` for reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Device",
    "DevicePage",
    "DeviceUpdate",
    "Group",
    "ImportResult",
    "SerialLookupResult",
    "Sim",
    "SimPage",
]


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _page(body: Any, key: str) -> tuple[list[Any], int]:
    """The items under ``key`` and ``meta.total_pages`` (1 when absent) of a paged answer."""
    body = body if isinstance(body, dict) else {}
    meta = body.get("meta")
    items = body.get(key)
    total = _int_or_none(meta.get("total_pages")) if isinstance(meta, dict) else None
    return (items if isinstance(items, list) else []), (total if total is not None else 1)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ImportResult:
    """How the cloud classified each identifier of an import (echoed as passed in)."""

    updated: int
    updated_ids: tuple[str, ...]
    existing_ids: tuple[str, ...]
    nonmember_ids: tuple[str, ...]
    invalid_ids: tuple[str, ...]
    protected_ids: tuple[str, ...]

    @classmethod
    def from_body(cls, body: Any) -> ImportResult:
        body = body if isinstance(body, dict) else {}
        updated = _int_or_none(body.get("updated"))
        updated_ids = _strs(body.get("updatedDeviceIds"))
        return cls(
            updated=updated if updated is not None else len(updated_ids),
            updated_ids=updated_ids,
            existing_ids=_strs(body.get("existingDeviceIds")),
            nonmember_ids=_strs(body.get("nonmemberDeviceIds")),
            invalid_ids=_strs(body.get("invalidDeviceIds")),
            protected_ids=_strs(body.get("protectedDeviceIds")),
        )


@dataclass(frozen=True, slots=True)
class SerialLookupResult:
    serial_number: str
    device_id: str
    platform_id: int | None
    iccid: str | None

    @classmethod
    def from_body(cls, serial: str, body: Any) -> SerialLookupResult:
        body = body if isinstance(body, dict) else {}
        device_id = body.get("device_id") or body.get("deviceID") or ""
        return cls(
            serial_number=serial,
            device_id=str(device_id).lower(),
            platform_id=_int_or_none(body.get("platform_id")),
            iccid=_str_or_none(body.get("iccid")),
        )


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    description: str | None = None
    color: str | None = None
    fw_version: int | None = None
    device_count: int | None = None

    @classmethod
    def from_body(cls, body: Any) -> Group:
        if isinstance(body, dict) and isinstance(body.get("group"), dict):
            body = body["group"]
        body = body if isinstance(body, dict) else {}
        return cls(
            name=str(body.get("name", "")),
            description=_str_or_none(body.get("description")),
            color=_str_or_none(body.get("color")),
            fw_version=_int_or_none(body.get("fw_version")),
            device_count=_int_or_none(body.get("device_count")),
        )


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    name: str | None
    serial_number: str | None
    iccid: str | None
    imei: str | None
    platform_id: int | None
    product_id: int | None
    groups: tuple[str, ...]
    owner: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> Device:
        body = body if isinstance(body, dict) else {}
        return cls(
            id=str(body.get("id", "")).lower(),
            name=_str_or_none(body.get("name")),
            serial_number=_str_or_none(body.get("serial_number")),
            iccid=_str_or_none(body.get("iccid")),
            imei=_str_or_none(body.get("imei")),
            platform_id=_int_or_none(body.get("platform_id")),
            product_id=_int_or_none(body.get("product_id")),
            groups=_strs(body.get("groups")),
            owner=_str_or_none(body.get("owner")),
            raw={k: v for k, v in body.items() if k != "mobile_secret"},
        )


@dataclass(frozen=True, slots=True)
class DevicePage:
    devices: tuple[Device, ...]
    total_pages: int

    @classmethod
    def from_body(cls, body: Any) -> DevicePage:
        items, total = _page(body, "devices")
        return cls(tuple(Device.from_body(d) for d in items), total)


@dataclass(frozen=True, slots=True)
class DeviceUpdate:
    """The echo of a device PUT: the id, the fields changed, and ``updated_at``."""

    id: str
    fields: dict[str, Any]
    updated_at: str | None

    @classmethod
    def from_body(cls, body: Any) -> DeviceUpdate:
        body = body if isinstance(body, dict) else {}
        rest = {k: v for k, v in body.items() if k not in ("id", "updated_at")}
        return cls(str(body.get("id", "")).lower(), rest, _str_or_none(body.get("updated_at")))


@dataclass(frozen=True, slots=True)
class Sim:
    iccid: str
    status: str | None
    product_id: int | None
    last_device_id: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> Sim:
        if isinstance(body, dict) and isinstance(body.get("sim"), dict):
            body = body["sim"]
        body = body if isinstance(body, dict) else {}
        return cls(
            iccid=str(body.get("_id") or body.get("iccid") or ""),
            status=_str_or_none(body.get("status")),
            product_id=_int_or_none(body.get("product_id")),
            last_device_id=_str_or_none(body.get("last_device_id")),
            raw=dict(body),
        )


@dataclass(frozen=True, slots=True)
class SimPage:
    sims: tuple[Sim, ...]
    total_pages: int

    @classmethod
    def from_body(cls, body: Any) -> SimPage:
        items, total = _page(body, "sims")
        return cls(tuple(Sim.from_body(s) for s in items), total)

"""The local cloud's records: plain dataclasses and their two JSON faces.

Each record knows how it looks on the wire (``to_api``, the shapes of spec §4, §5
and §8) and in the admin surface and state file (``to_admin``, every field as
stored). The rules that change records live in :mod:`.state`; how they reach a
disk lives in :mod:`.persistence`. Records hold only JSON-safe values (text that
is valid UTF-8, ints, bools, lists of text), which body parsing and the state
file loader guarantee, so rendering one can never fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

__all__ = ["Device", "Group", "ImportResult", "Product", "Sim", "Token", "now_iso", "plain"]


def plain(record: Any) -> dict[str, Any]:
    """A flat record as a dict, lists copied: what ``asdict`` gives, five times faster.

    ``asdict`` deep-copies recursively; records hold only scalars and lists of
    text, so a shallow copy of each list is enough. It matters when a state of
    tens of thousands of devices is dumped or saved.
    """
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(f.name for f in fields(record))
    out = {name: getattr(record, name) for name in names}
    for name, value in out.items():
        if isinstance(value, list):
            out[name] = list(value)
    return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def now_iso() -> str:
    """The cloud's timestamp format: UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Product:
    id: int
    slug: str
    platform_id: int
    name: str
    device_limit: int | None = None
    """Sandbox products stop at 100 devices; ``None`` = no limit."""
    protected: bool = False
    """Device Protection enabled: protected devices may be imported only here."""

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slug": self.slug,
            "platform_id": self.platform_id,
            "name": self.name,
            "description": "",
            "device_limit": self.device_limit,
        }


@dataclass(slots=True)
class Device:
    id: str
    serial_number: str
    iccid: str
    imei: str
    mobile_secret: str
    platform_id: int
    sku: str
    sim_embedded: bool = True
    product_id: int | None = None
    name: str | None = None
    notes: str | None = None
    owner: str | None = None
    groups: list[str] = field(default_factory=list)
    development: bool = False
    quarantined: bool = False
    protected: bool = False
    desired_firmware_version: int | None = None
    firmware_version: int | None = None
    updated_at: str = field(default_factory=now_iso)
    online: bool = False
    """Connected to the cloud now (set through ``POST /_emulator/devices/:id/online``)."""
    last_heard: str | None = None
    last_handshake_at: str | None = None

    def to_admin(self) -> dict[str, Any]:
        """The ``GET /_emulator/state`` shape (a contract: tests outside trayline read it)."""
        return plain(self)

    def to_api(self) -> dict[str, Any]:
        """The device object of ``GET /v1/products/:p/devices[/:id]`` (spec §8.1)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "last_ip_address": None,
            "last_heard": self.last_heard,
            "last_handshake_at": self.last_handshake_at,
            "product_id": self.product_id,
            "online": self.online,
            "connected": self.online,
            "platform_id": self.platform_id,
            "cellular": True,
            "notes": self.notes,
            "functions": [],
            "variables": {},
            "status": "normal",
            "serial_number": self.serial_number,
            "iccid": self.iccid,
            "imei": self.imei,
            "mobile_secret": self.mobile_secret,
            "system_firmware_version": None,
            "firmware_product_id": self.product_id,
            "groups": list(self.groups),
            "firmware_version": self.firmware_version,
            "desired_firmware_version": self.desired_firmware_version,
            "targeted_firmware_release_version": None,
            "development": self.development,
            "quarantined": self.quarantined,
            "denied": False,
            "device_protection": {"status": "active" if self.protected else "disabled"},
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class Sim:
    iccid: str
    status: str = "inactive"
    """``inactive`` → ``active`` → ``deactivated`` (spec §4.4)."""
    product_id: int | None = None
    owner: str | None = None
    last_device_id: str | None = None
    activations_count: int = 0
    deactivations_count: int = 0
    first_activated_on: str | None = None
    last_activated_on: str | None = None
    last_status_change_action: str | None = None
    updated_at: str = field(default_factory=now_iso)

    def to_admin(self) -> dict[str, Any]:
        return plain(self)

    def to_api(self, device_name: str | None = None) -> dict[str, Any]:
        return {
            "_id": self.iccid,
            "iccid": self.iccid,
            "activations_count": self.activations_count,
            "base_country_code": "US",
            "base_monthly_rate": 0,
            "deactivations_count": self.deactivations_count,
            "first_activated_on": self.first_activated_on,
            "last_activated_on": self.last_activated_on,
            "last_activated_via": "api" if self.last_activated_on else None,
            "last_status_change_action": self.last_status_change_action,
            "last_status_change_action_error": "no",
            "msisdn": None,
            "overage_monthly_rate": 0,
            "status": self.status,
            "stripe_plan_slug": None,
            "updated_at": self.updated_at,
            "user_id": self.owner,
            "owner": self.owner,
            "product_id": self.product_id,
            "carrier": "EtherSIM",
            "last_device_id": self.last_device_id,
            "last_device_name": device_name,
        }

    def activate(self, action: str) -> None:
        stamp = now_iso()
        if self.status != "active":
            self.activations_count += 1
            self.first_activated_on = self.first_activated_on or stamp
            self.last_activated_on = stamp
        self.status = "active"
        self.last_status_change_action = action
        self.updated_at = stamp

    def deactivate(self) -> None:
        if self.status == "active":
            self.deactivations_count += 1
        self.status = "deactivated"
        self.last_status_change_action = "deactivate"
        self.updated_at = now_iso()


@dataclass(slots=True)
class Group:
    product_id: int
    name: str
    description: str | None = None
    color: str | None = None
    fw_version: int | None = None

    def to_api(self, device_count: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "color": self.color,
            "fw_version": self.fw_version,
        }
        if device_count is not None:
            body["device_count"] = device_count
        return body

    def to_admin(self) -> dict[str, Any]:
        return plain(self)


@dataclass(slots=True)
class Token:
    """An access token. ``scopes`` ``None`` means a person's token: every permission."""

    token: str = field(repr=False)
    username: str
    scopes: list[str] | None = None
    api_user: bool = False

    def allows(self, permission: str) -> bool:
        return self.scopes is None or permission in self.scopes


@dataclass(slots=True)
class ImportResult:
    """The body of ``POST /v1/products/:p/devices`` (spec §3); arrays echo identifiers as sent."""

    updatedDeviceIds: list[str] = field(default_factory=list)
    existingDeviceIds: list[str] = field(default_factory=list)
    nonmemberDeviceIds: list[str] = field(default_factory=list)
    invalidDeviceIds: list[str] = field(default_factory=list)
    protectedDeviceIds: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {"updated": len(self.updatedDeviceIds), **asdict(self)}

"""What the local cloud knows: products, devices, SIMs, groups and tokens, in memory.

This is the functional core of the emulator. It holds the records and the rules
that act on them (import classification, group membership, claiming, SIM state)
and knows nothing about HTTP: the app parses a request, asks the state, and turns
the answer or a :class:`CloudError` into a response.

Benchmarks run it with tens of thousands of devices and thousands of requests a
second, so every lookup a request needs is an index: devices by ID, serial, IMEI
and ICCID; device IDs per product and per group (insertion-ordered dicts used as
ordered sets, so listing one group costs the group's size, not the product's).

``--state FILE`` persistence is a JSON document written to a temporary file in the
same folder and renamed over the old one, so a killed server leaves either the old
or the new file, never half of one. The file holds tokens, so it is created 0600.
"""

from __future__ import annotations

import json
import math
import random
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trayline.core.skus import get_sku
from trayline.durable import write_atomically
from trayline.particle.emulator.factory import make_unit

__all__ = [
    "CloudError",
    "Device",
    "EmulatorState",
    "Group",
    "ImportResult",
    "Product",
    "Sim",
    "Token",
    "permission_denied",
]

STATE_FORMAT = "trayline-cloud-state"
STATE_VERSION = 1
_GROUP_NAME = re.compile(r"[a-z0-9_-]{1,64}")
_DENIED_INFO = (
    "I didn't recognize that device name or ID, try opening "
    "https://api.particle.io/v1/devices?access_token="
)


class CloudError(Exception):
    """A Particle-shaped error answer: an HTTP status and the exact JSON body to send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def permission_denied(status: int = 403) -> CloudError:
    """The cloud's answer for a device that does not exist or is not yours (spec §0.3)."""
    return CloudError(status, {"ok": False, "error": "Permission Denied", "info": _DENIED_INFO})


def now_iso() -> str:
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

    def to_admin(self) -> dict[str, Any]:
        """The ``GET /_emulator/state`` shape (a contract: tests outside trayline read it)."""
        return asdict(self)

    def to_api(self) -> dict[str, Any]:
        """The device object of ``GET /v1/products/:p/devices[/:id]`` (spec §8.1)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "last_ip_address": None,
            "last_heard": None,
            "last_handshake_at": None,
            "product_id": self.product_id,
            "online": False,
            "connected": False,
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
        return asdict(self)

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
        return asdict(self)


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


class EmulatorState:
    """All records of one local cloud, with the indexes every request path needs."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.clear()

    def clear(self) -> None:
        """Forget everything (``POST /_emulator/reset``)."""
        self.products: dict[int, Product] = {}
        self.product_by_slug: dict[str, int] = {}
        self.devices: dict[str, Device] = {}
        self.by_serial: dict[str, str] = {}
        self.by_imei: dict[str, str] = {}
        self.by_iccid: dict[str, str] = {}
        self.product_devices: dict[int, dict[str, None]] = {}
        self.groups: dict[int, dict[str, Group]] = {}
        self.group_members: dict[tuple[int, str], dict[str, None]] = {}
        self.sims: dict[str, Sim] = {}
        self.tokens: dict[str, Token] = {}
        self.version = 0
        """Bumped on every mutation; persistence saves when it moved."""

    def touch(self) -> None:
        self.version += 1

    # ----------------------------------------------------------------- products, tokens
    def add_product(
        self,
        id: int,
        slug: str | None = None,
        platform_id: int = 13,
        name: str | None = None,
        device_limit: int | None = None,
        protected: bool = False,
    ) -> Product:
        """Create (or replace) a product; ``slug`` defaults to ``product-<id>``."""
        old = self.products.get(id)
        if old is not None:
            self.product_by_slug.pop(old.slug, None)
        product = Product(
            id=int(id),
            slug=slug or f"product-{id}",
            platform_id=int(platform_id),
            name=name or slug or f"Product {id}",
            device_limit=device_limit,
            protected=protected,
        )
        self.products[product.id] = product
        self.product_by_slug[product.slug] = product.id
        self.product_devices.setdefault(product.id, {})
        self.groups.setdefault(product.id, {})
        self.touch()
        return product

    def find_product(self, ref: str) -> Product | None:
        """A product by numeric ID or slug, as the path gives it."""
        if ref.isdigit():
            return self.products.get(int(ref))
        product_id = self.product_by_slug.get(ref)
        return None if product_id is None else self.products.get(product_id)

    def add_token(
        self,
        username: str,
        scopes: Iterable[str] | None = None,
        api_user: bool = False,
        token: str | None = None,
    ) -> str:
        """Issue a token; ``scopes=None`` is a person's all-powerful token."""
        value = token or secrets.token_hex(20)
        self.tokens[value] = Token(
            token=value,
            username=username,
            scopes=None if scopes is None else list(scopes),
            api_user=api_user,
        )
        self.touch()
        return value

    # ----------------------------------------------------------------- devices
    def make_devices(
        self,
        sku: str,
        count: int,
        product_id: int | None = None,
        protected: bool = False,
        owner: str | None = None,
    ) -> list[Device]:
        """Manufacture ``count`` devices of ``sku`` (raises ``UnknownSku``), with their SIMs.

        With ``product_id`` they are imported into that product at once (embedded
        SIMs activated), as if a tray had already been provisioned.
        """
        spec = get_sku(sku)
        product = self.products.get(product_id) if product_id is not None else None
        if product_id is not None and product is None:
            raise KeyError(f"no product {product_id}")
        made: list[Device] = []
        for _ in range(count):
            unit = make_unit(spec, self.rng)
            while (
                unit.id in self.devices
                or unit.serial_number in self.by_serial
                or unit.iccid in self.by_iccid
                or unit.imei in self.by_imei
            ):
                unit = make_unit(spec, self.rng)
            device = Device(
                id=unit.id,
                serial_number=unit.serial_number,
                iccid=unit.iccid,
                imei=unit.imei,
                mobile_secret=unit.mobile_secret,
                platform_id=unit.platform_id,
                sku=unit.sku,
                sim_embedded=unit.sim_embedded,
                protected=protected,
                owner=owner,
            )
            self._index(device)
            self.sims[device.iccid] = Sim(
                iccid=device.iccid, last_device_id=device.id if device.sim_embedded else None
            )
            if product is not None:
                self._add_to_product(device, product, activate_sim=True)
            made.append(device)
        self.touch()
        return made

    def _index(self, device: Device) -> None:
        self.devices[device.id] = device
        self.by_serial[device.serial_number] = device.id
        self.by_imei[device.imei] = device.id
        self.by_iccid[device.iccid] = device.id

    def find_device(self, identifier: str) -> Device | None:
        """A device by ID, serial, IMEI or ICCID, ignoring case and surrounding spaces."""
        text = identifier.strip()
        device = self.devices.get(text.lower())
        if device is not None:
            return device
        device_id = (
            self.by_serial.get(text.upper()) or self.by_imei.get(text) or self.by_iccid.get(text)
        )
        return None if device_id is None else self.devices.get(device_id)

    def product_device(self, product: Product, device_id: str) -> Device | None:
        """A device of this product by ID (case-insensitive), or ``None``."""
        key = device_id.strip().lower()
        if key not in self.product_devices[product.id]:
            return None
        return self.devices.get(key)

    def _add_to_product(self, device: Device, product: Product, activate_sim: bool) -> None:
        device.product_id = product.id
        device.updated_at = now_iso()
        self.product_devices[product.id][device.id] = None
        sim = self.sims.get(device.iccid)
        if sim is not None and device.sim_embedded:
            sim.product_id = product.id
            sim.last_device_id = device.id
            if activate_sim:
                sim.activate("activate")

    def remove_from_product(self, device: Device) -> None:
        """``DELETE /v1/products/:p/devices/:id``: leave the product, its groups and its owner."""
        if device.product_id is None:
            return
        for name in device.groups:
            self.group_members.get((device.product_id, name), {}).pop(device.id, None)
        self.product_devices[device.product_id].pop(device.id, None)
        device.product_id = None
        device.groups = []
        device.owner = None
        device.updated_at = now_iso()
        self.touch()

    def import_devices(
        self,
        product: Product,
        identifiers: Iterable[str],
        *,
        other_product_bucket: str = "invalidDeviceIds",
        platform_mismatch_bucket: str = "invalidDeviceIds",
        claim_user: str | None = None,
    ) -> ImportResult:
        """Classify and import identifiers as sent (spec §3); repeats land in ``existing``."""
        result = ImportResult()
        members = self.product_devices[product.id]
        for raw in identifiers:
            device = self.find_device(raw)
            if device is None:
                result.invalidDeviceIds.append(raw)
            elif device.product_id == product.id:
                result.existingDeviceIds.append(raw)
                if claim_user:
                    device.owner = claim_user
            elif device.product_id is not None:
                getattr(result, other_product_bucket).append(raw)
            elif device.platform_id != product.platform_id and not _compatible(
                device.platform_id, product.platform_id
            ):
                getattr(result, platform_mismatch_bucket).append(raw)
            elif device.protected and not product.protected:
                result.protectedDeviceIds.append(raw)
            elif product.device_limit is not None and len(members) >= product.device_limit:
                result.invalidDeviceIds.append(raw)
            else:
                self._add_to_product(device, product, activate_sim=True)
                if claim_user:
                    device.owner = claim_user
                result.updatedDeviceIds.append(raw)
        self.touch()
        return result

    def update_device(self, device: Device, changes: dict[str, Any]) -> None:
        """Apply already-validated field changes (name, notes, development, ...)."""
        for key, value in changes.items():
            if key == "groups":
                self.set_groups(device, value)
            else:
                setattr(device, key, value)
        device.updated_at = now_iso()
        self.touch()

    # ----------------------------------------------------------------- listing
    def list_product_devices(
        self,
        product: Product,
        *,
        device_id: str | None = None,
        groups: list[str] | None = None,
        device_name: str | None = None,
        serial_number: str | None = None,
        quarantined: bool | None = None,
        sort_attr: str | None = None,
        sort_dir: str = "asc",
        page: int = 1,
        per_page: int = 25,
    ) -> tuple[list[Device], int]:
        """One page of a product's devices and the page count (spec §8.2).

        Filters are partial, case-insensitive matches; ``groups`` keeps devices in
        any of the named groups and walks only those groups' member lists.
        """
        candidates: Iterable[str]
        if groups:
            seen: dict[str, None] = {}
            for name in groups:
                seen.update(self.group_members.get((product.id, name.strip().lower()), {}))
            candidates = seen
        elif serial_number and len(serial_number.strip()) == 15:
            found = self.by_serial.get(serial_number.strip().upper())
            candidates = [found] if found in self.product_devices[product.id] else []
            serial_number = None
        elif device_id and len(device_id.strip()) == 24:
            key = device_id.strip().lower()
            candidates = [key] if key in self.product_devices[product.id] else []
            device_id = None
        else:
            candidates = self.product_devices[product.id]
        devices: Iterator[Device] = (self.devices[i] for i in candidates)
        if device_id:
            needle_id = device_id.strip().lower()
            devices = (d for d in devices if needle_id in d.id)
        if serial_number:
            needle_sn = serial_number.strip().upper()
            devices = (d for d in devices if needle_sn in d.serial_number)
        if device_name:
            needle_name = device_name.strip().lower()
            devices = (d for d in devices if d.name and needle_name in d.name.lower())
        if quarantined is not None:
            devices = (d for d in devices if d.quarantined == quarantined)
        matched = list(devices)
        if sort_attr:
            key_of = _SORT_KEYS.get(sort_attr, _SORT_KEYS["deviceId"])
            matched.sort(key=key_of, reverse=sort_dir.lower() == "desc")
        total_pages = math.ceil(len(matched) / per_page)
        start = (page - 1) * per_page
        return matched[start : start + per_page], total_pages

    # ----------------------------------------------------------------- groups
    @staticmethod
    def valid_group_name(name: str) -> bool:
        return _GROUP_NAME.fullmatch(name) is not None

    def create_group(
        self,
        product: Product,
        name: str,
        description: str | None = None,
        color: str | None = None,
    ) -> Group:
        group = Group(product_id=product.id, name=name, description=description, color=color)
        self.groups[product.id][name] = group
        self.group_members.setdefault((product.id, name), {})
        self.touch()
        return group

    def group_size(self, product_id: int, name: str) -> int:
        return len(self.group_members.get((product_id, name), {}))

    def rename_group(self, product: Product, group: Group, new_name: str) -> None:
        """Rename a group and every member's reference to it (cost: the group's size)."""
        old = group.name
        members = self.group_members.pop((product.id, old), {})
        del self.groups[product.id][old]
        group.name = new_name
        self.groups[product.id][new_name] = group
        self.group_members[(product.id, new_name)] = members
        for device_id in members:
            device = self.devices[device_id]
            device.groups = [new_name if g == old else g for g in device.groups]
        self.touch()

    def delete_group(self, product: Product, name: str) -> None:
        members = self.group_members.pop((product.id, name), {})
        self.groups[product.id].pop(name, None)
        for device_id in members:
            device = self.devices[device_id]
            device.groups = [g for g in device.groups if g != name]
        self.touch()

    def ensure_group(self, product: Product, name: str) -> None:
        if name not in self.groups[product.id]:
            self.create_group(product, name)

    def set_groups(self, device: Device, names: list[str]) -> None:
        """Replace a device's group list (groups must already exist)."""
        assert device.product_id is not None
        product_id = device.product_id
        for name in device.groups:
            self.group_members.get((product_id, name), {}).pop(device.id, None)
        unique = list(dict.fromkeys(names))
        for name in unique:
            self.group_members.setdefault((product_id, name), {})[device.id] = None
        device.groups = unique
        self.touch()

    def change_groups(self, device: Device, add: list[str], remove: list[str]) -> None:
        """Batch ``action=groups``: add then remove; repeats are no-ops."""
        assert device.product_id is not None
        product_id = device.product_id
        current = dict.fromkeys(device.groups)
        for name in add:
            current[name] = None
            self.group_members.setdefault((product_id, name), {})[device.id] = None
        for name in remove:
            current.pop(name, None)
            self.group_members.get((product_id, name), {}).pop(device.id, None)
        device.groups = list(current)
        device.updated_at = now_iso()

    # ----------------------------------------------------------------- SIMs
    def import_sims(self, product: Product, iccids: Iterable[str]) -> list[str]:
        """Import and activate SIMs; returns the ICCIDs the cloud did not know.

        A SIM embedded in a known device brings its device into the product too
        (spec §4.1). Unknown ICCIDs would be reported by e-mail; here they are
        returned so the admin surface can show them.
        """
        unknown: list[str] = []
        for raw in iccids:
            iccid = raw.strip()
            sim = self.sims.get(iccid)
            if sim is None:
                unknown.append(iccid)
                continue
            sim.product_id = product.id
            sim.activate("activate")
            device_id = self.by_iccid.get(iccid)
            device = self.devices.get(device_id) if device_id else None
            if (
                device is not None
                and device.sim_embedded
                and device.product_id is None
                and _compatible(device.platform_id, product.platform_id)
            ):
                self._add_to_product(device, product, activate_sim=False)
        self.touch()
        return unknown

    def sim_device_name(self, sim: Sim) -> str | None:
        device = self.devices.get(sim.last_device_id) if sim.last_device_id else None
        return device.name if device else None

    # ----------------------------------------------------------------- persistence
    def snapshot(self) -> dict[str, Any]:
        """Everything but counters, as plain JSON data (``/_emulator/state`` and the file)."""
        return {
            "products": [asdict(p) for p in self.products.values()],
            "devices": [d.to_admin() for d in self.devices.values()],
            "groups": [g.to_admin() for gs in self.groups.values() for g in gs.values()],
            "sims": [s.to_admin() for s in self.sims.values()],
        }

    def to_file_data(self) -> dict[str, Any]:
        data = {"format": STATE_FORMAT, "version": STATE_VERSION, **self.snapshot()}
        data["tokens"] = [asdict(t) for t in self.tokens.values()]
        return data

    def save(self, path: Path, data: dict[str, Any] | None = None) -> None:
        """Write atomically: temp file in the same folder, fsync, rename over ``path``."""
        payload = json.dumps(data if data is not None else self.to_file_data(), indent=1)
        write_atomically(path, payload.encode())

    @classmethod
    def load(cls, path: Path, seed: int | None = None) -> EmulatorState:
        """Read a file written by :meth:`save` (raises ``ValueError`` if it is not one)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ValueError(f"{path} is not a trayline cloud state file")
        state = cls(seed)
        for raw in data.get("products", []):
            state.add_product(**raw)
        for raw in data.get("devices", []):
            device = Device(**raw)
            state._index(device)
            if device.product_id is not None and device.product_id in state.products:
                state.product_devices[device.product_id][device.id] = None
                for name in device.groups:
                    state.group_members.setdefault((device.product_id, name), {})[device.id] = None
        for raw in data.get("groups", []):
            group = Group(**raw)
            state.groups.setdefault(group.product_id, {})[group.name] = group
            state.group_members.setdefault((group.product_id, group.name), {})
        for raw in data.get("sims", []):
            sim = Sim(**raw)
            state.sims[sim.iccid] = sim
        for raw in data.get("tokens", []):
            state.tokens[raw["token"]] = Token(**raw)
        state.version = 0
        return state


# Electron (10) and E-Series share platform 10; every other platform needs its own product.
def _compatible(device_platform: int, product_platform: int) -> bool:
    return device_platform == product_platform


_SORT_KEYS: dict[str, Any] = {
    "deviceId": lambda d: d.id,
    "deviceName": lambda d: (d.name or "").lower(),
    "firmwareVersion": lambda d: d.firmware_version or 0,
    "lastConnection": lambda d: d.updated_at,
    "serialNumber": lambda d: d.serial_number,
}

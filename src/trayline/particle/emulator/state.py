"""What the local cloud knows and the rules that change it: the functional core.

:class:`EmulatorState` holds the records of :mod:`.records` and every rule that
acts on them: import classification, group naming and membership, claiming, SIM
state, product slugs, the factory's limits, a device coming online. It knows
nothing about HTTP: a route reads typed fields from the request, asks the state,
and the state answers or raises a :class:`~.errors.CloudError` whose body is the
exact Particle-shaped refusal. Where Particle's behaviour is UNCONFIRMED the rule
reads its choice from :class:`~.config.EmulatorConfig` (``self.config``).

Every rule validates all of its input before it changes anything, so a refused
request leaves nothing behind.

Benchmarks run it with tens of thousands of devices and thousands of requests a
second, so every lookup a request needs is an index: devices by ID, serial, IMEI
and ICCID; device IDs per product and per group (insertion-ordered dicts used as
ordered sets, so listing one group costs the group's size, not the product's).
Group rules live in :mod:`.grouping` (a mixin of this class), listing in
:mod:`.listing`, the state file in :mod:`.persistence`.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from trayline.core.skus import Sku, UnknownSku, get_sku
from trayline.particle.emulator.config import EmulatorConfig
from trayline.particle.emulator.errors import (
    CloudError,
    bad_request,
    conflict,
    not_found,
    permission_denied,
)
from trayline.particle.emulator.factory import FactoryUnit, make_unit
from trayline.particle.emulator.grouping import GroupRules
from trayline.particle.emulator.records import (
    Device,
    Group,
    ImportResult,
    Product,
    Sim,
    Token,
    now_iso,
    plain,
)

__all__ = [
    "CloudError",
    "Device",
    "EmulatorState",
    "Group",
    "ImportResult",
    "Product",
    "Sim",
    "Token",
    "now_iso",
    "permission_denied",
]

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # as trayline.core.ids.ProductRef reads slugs
MAX_PRODUCT_ID = 2**31 - 1
MAX_PLATFORM_ID = 65535


class EmulatorState(GroupRules):
    """All records of one local cloud, with the indexes every request path needs."""

    def __init__(self, seed: int | None = None, config: EmulatorConfig | None = None) -> None:
        self.rng = random.Random(seed)
        self.config = config or EmulatorConfig()
        """The UNCONFIRMED choices the rules follow; ``create_app`` sets the app's own."""
        self.load_problems: list[str] = []
        """Records a state file held that could not be loaded (see :mod:`.persistence`)."""
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
        """Create (or replace, same ``id``) a product; ``slug`` defaults to ``product-<id>``.

        A slug is lowercase letters, digits and dashes, not all digits (the path
        ``/v1/products/:p`` reads digits as an ID), and belongs to one product:
        another product's slug is a 409.
        """
        if isinstance(id, bool) or not 1 <= id <= MAX_PRODUCT_ID:
            raise bad_request(f"product id must be a whole number from 1 to {MAX_PRODUCT_ID}")
        if isinstance(platform_id, bool) or not 0 <= platform_id <= MAX_PLATFORM_ID:
            raise bad_request(f"platform_id must be a whole number from 0 to {MAX_PLATFORM_ID}")
        if device_limit is not None and device_limit < 0:
            raise bad_request("device_limit must be 0 or more, or null for no limit")
        slug = slug or f"product-{id}"
        if not _SLUG.fullmatch(slug) or slug.isdigit():
            raise bad_request(
                "slug must be 1 to 64 lowercase letters, digits and dashes, not all digits"
            )
        owner = self.product_by_slug.get(slug)
        if owner is not None and owner != id:
            raise conflict(f"slug {slug} already belongs to product {owner}")
        old = self.products.get(id)
        if old is not None:
            self.product_by_slug.pop(old.slug, None)
        product = Product(id, slug, platform_id, name or slug, device_limit, protected)
        self.products[id] = product
        self.product_by_slug[slug] = id
        self.product_devices.setdefault(id, {})
        self.groups.setdefault(id, {})
        self.touch()
        return product

    def find_product(self, ref: str) -> Product | None:
        """A product by numeric ID or slug, as the path gives it."""
        if ref.isascii() and ref.isdigit():
            return self.products.get(int(ref))
        product_id = self.product_by_slug.get(ref)
        return None if product_id is None else self.products.get(product_id)

    def product(self, ref: str) -> Product:
        """Like :meth:`find_product`, but an unknown product is a 404 (body assumed)."""
        product = self.find_product(ref)
        if product is None:
            raise not_found(f"Product {ref} not found")
        return product

    def add_token(
        self,
        username: str,
        scopes: Iterable[str] | None = None,
        api_user: bool = False,
        token: str | None = None,
    ) -> str:
        """Issue a token; ``scopes=None`` is a person's all-powerful token."""
        value = token or secrets.token_hex(20)
        if not value.isascii() or not value.isprintable() or " " in value:
            raise bad_request("token must be printable ASCII without spaces")
        self.tokens[value] = Token(
            token=value,
            username=username,
            scopes=None if scopes is None else list(scopes),
            api_user=api_user,
        )
        self.touch()
        return value

    # ----------------------------------------------------------------- the factory
    def factory_sku(self, sku: str, count: int) -> Sku:
        """Check a factory order before anything is made (unknown SKU or bad count: 400)."""
        try:
            spec = get_sku(sku)
        except UnknownSku as exc:
            raise bad_request(str(exc)) from None
        if count < 1:
            raise bad_request("count must be at least 1")
        return spec

    def new_units(self, spec: Sku, count: int) -> Iterator[FactoryUnit]:
        """Invent ``count`` units unique against every known device and each other.

        A generator, so the admin route can make a large order in chunks and let
        other requests through between them; nothing is stored until
        :meth:`add_units`.
        """
        taken: set[str] = set()
        for _ in range(count):
            unit = make_unit(spec, self.rng)
            while self._clashes(unit) or {unit.id, unit.serial_number, unit.iccid} & taken:
                unit = make_unit(spec, self.rng)
            taken.update((unit.id, unit.serial_number, unit.iccid, unit.imei))
            yield unit

    def _clashes(self, unit: FactoryUnit) -> bool:
        return (
            unit.id in self.devices
            or unit.serial_number in self.by_serial
            or unit.iccid in self.by_iccid
            or unit.imei in self.by_imei
        )

    def owning_product(self, product_id: int | None) -> Product | None:
        if product_id is None:
            return None
        product = self.products.get(product_id)
        if product is None:
            raise bad_request(f"no product {product_id}")
        return product

    def add_units(
        self,
        units: Iterable[FactoryUnit],
        product: Product | None = None,
        *,
        protected: bool = False,
        owner: str | None = None,
        online: bool = False,
    ) -> list[Device]:
        """Store units as devices with their SIMs; with ``product``, imported at once."""
        made: list[Device] = []
        for unit in units:
            if self._clashes(unit):
                continue  # a tray file already loaded, or a unit made twice
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
            self.index(device)
            self.sims[device.iccid] = Sim(
                iccid=device.iccid, last_device_id=device.id if device.sim_embedded else None
            )
            if product is not None:
                self._add_to_product(device, product, activate_sim=True)
            if online:
                self._set_online(device, True)
            made.append(device)
        self.touch()
        return made

    def make_devices(
        self,
        sku: str,
        count: int,
        product_id: int | None = None,
        protected: bool = False,
        owner: str | None = None,
        online: bool = False,
    ) -> list[Device]:
        """Manufacture ``count`` devices of ``sku``, with their SIMs (Python API, no limit).

        With ``product_id`` they are imported into that product at once (embedded
        SIMs activated), as if a tray had already been provisioned.
        """
        spec = get_sku(sku)
        product = self.owning_product(product_id)
        units = list(self.new_units(spec, count))
        return self.add_units(units, product, protected=protected, owner=owner, online=online)

    def index(self, device: Device) -> None:
        self.devices[device.id] = device
        self.by_serial[device.serial_number] = device.id
        self.by_imei[device.imei] = device.id
        self.by_iccid[device.iccid] = device.id

    # ----------------------------------------------------------------- devices
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

    def member(self, product: Product, device_id: str) -> Device:
        """A device of this product, or the cloud's 403 ``Permission Denied`` (spec §0.3)."""
        device = self.product_device(product, device_id)
        if device is None:
            raise permission_denied(self.config.device_not_found_status)
        return device

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
        self, product: Product, identifiers: Iterable[str], *, claim_user: str | None = None
    ) -> ImportResult:
        """Classify and import identifiers as sent (spec §3); repeats land in ``existing``."""
        result = ImportResult()
        members = self.product_devices[product.id]
        other_bucket = self.config.other_product_bucket
        platform_bucket = self.config.platform_mismatch_bucket
        for raw in identifiers:
            device = self.find_device(raw)
            if device is None:
                result.invalidDeviceIds.append(raw)
            elif device.product_id == product.id:
                result.existingDeviceIds.append(raw)
                if claim_user:
                    device.owner = claim_user
            elif device.product_id is not None:
                getattr(result, other_bucket).append(raw)
            elif device.platform_id != product.platform_id:
                # Platforms must match exactly: no platform is shared between products.
                getattr(result, platform_bucket).append(raw)
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
        """Apply already-typed field changes (name, notes, development, groups, ...).

        ``groups`` is an absolute set; names are checked first and groups that do
        not exist yet are created (spec §5.4), so a bad name changes nothing.
        """
        if "groups" in changes:
            names = [self.group_name(g) for g in changes["groups"]]
            if device.product_id is None:
                raise bad_request("the device is in no product, so it can have no groups")
            product = self.products[device.product_id]
            for name in names:
                self.ensure_group(product, name)
            changes = {**changes, "groups": names}
        for key, value in changes.items():
            if key == "groups":
                self.set_groups(device, value)
            else:
                setattr(device, key, value)
        device.updated_at = now_iso()
        self.touch()

    def set_online(self, device_id: str, online: bool) -> Device:
        """A device connects (``last_heard`` and ``last_handshake_at`` now) or goes away."""
        device = self.find_device(device_id)
        if device is None:
            raise not_found(f"Device {device_id} not found")
        self._set_online(device, online)
        self.touch()
        return device

    @staticmethod
    def _set_online(device: Device, online: bool) -> None:
        stamp = now_iso()
        if online:
            if not device.online:
                device.last_handshake_at = stamp
            device.last_heard = stamp
        device.online = online

    def lookup_serial(self, serial: str) -> Device:
        """``GET /v1/serial_numbers/:sn``: the device, or 404 (assumed status, configurable)."""
        device_id = self.by_serial.get(serial.strip().upper())
        if device_id is None:
            raise CloudError(
                self.config.serial_lookup_status_not_found,
                {"ok": False, "error": f"Serial number {serial.strip().upper()} not found"},
            )
        return self.devices[device_id]

    # ----------------------------------------------------------------- claims (spec §7)
    def claim(self, identifier: str, username: str, request_transfer: bool) -> dict[str, Any]:
        """Claim a device to ``username``; someone else's device is a 403 or a transfer."""
        raw = identifier.strip()
        if not raw:
            raise bad_request("id is required")
        device = self.devices.get(raw.lower())
        if device is None:
            raise permission_denied(self.config.device_not_found_status)
        if device.owner not in (None, username):
            if request_transfer:
                return {"ok": True, "transfer_id": secrets.token_hex(12)}
            raise CloudError(403, {"ok": False, "errors": ["That belongs to someone else."]})
        device.owner = username
        device.updated_at = now_iso()
        self.touch()
        return {"ok": True, "id": device.id, "user_id": username, "connected": device.online}

    def unclaim(self, device_id: str, username: str) -> None:
        """``DELETE /v1/devices/:id``: your own device, or any product device."""
        device = self.devices.get(device_id.strip().lower())
        if device is None or (device.owner != username and device.product_id is None):
            raise permission_denied(self.config.device_not_found_status)
        self.release_owner(device)

    def release_owner(self, device: Device) -> None:
        device.owner = None
        device.updated_at = now_iso()
        self.touch()

    # ----------------------------------------------------------------- SIMs (spec §4)
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
                and device.platform_id == product.platform_id
            ):
                self._add_to_product(device, product, activate_sim=False)
        self.touch()
        return unknown

    def sim(self, iccid: str, product: Product | None = None) -> Sim:
        """A known SIM (of ``product``, when the path names one), or 404."""
        sim = self.sims.get(iccid.strip())
        if sim is None or (product is not None and sim.product_id != product.id):
            raise not_found(f"SIM card {iccid.strip()} not found")
        return sim

    def change_sim(self, sim: Sim, action: str | None) -> None:
        """``PUT /v1/sims/:iccid`` ``action=activate|deactivate|reactivate`` (spec §4.4)."""
        if action in ("activate", "reactivate"):
            sim.activate(action)
        elif action == "deactivate":
            sim.deactivate()
        else:
            raise bad_request(
                f"Unknown action {action!r}: use activate, deactivate or reactivate"
                if action
                else "action is required"
            )
        self.touch()

    def release_sim(self, sim: Sim) -> None:
        sim.deactivate()
        sim.product_id = None
        sim.owner = None
        self.touch()

    def sim_device_name(self, sim: Sim) -> str | None:
        device = self.devices.get(sim.last_device_id) if sim.last_device_id else None
        return device.name if device else None

    # ----------------------------------------------------------------- snapshots and files
    def snapshot(self) -> dict[str, Any]:
        """Everything but counters, as plain JSON data (``/_emulator/state`` and the file)."""
        return {
            "products": [plain(p) for p in self.products.values()],
            "devices": [d.to_admin() for d in self.devices.values()],
            "groups": [g.to_admin() for gs in self.groups.values() for g in gs.values()],
            "sims": [s.to_admin() for s in self.sims.values()],
        }

    def save(self, path: Path) -> None:
        """Write the state file atomically (see :mod:`.persistence`)."""
        from trayline.particle.emulator.persistence import save_state

        save_state(self, path)

    @classmethod
    def load(
        cls, path: Path, seed: int | None = None, config: EmulatorConfig | None = None
    ) -> EmulatorState:
        """Read a state file (raises ``ValueError`` if it is not one); see :mod:`.persistence`."""
        from trayline.particle.emulator.persistence import load_state

        return load_state(path, seed=seed, config=config)

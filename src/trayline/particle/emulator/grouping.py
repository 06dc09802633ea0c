"""Group rules of the local cloud: names, duplicates, membership, batch changes (spec §5).

A mixin of :class:`~.state.EmulatorState`, kept in its own module because
groups are the one part of the state with rules of their own: the
``[a-z0-9_-]{1,64}`` name (and the configurable upper-case choice), the
configurable duplicate answer, automatic creation on a device PUT, and a batch
``action=groups`` that checks every name and device before it changes any.
Membership is indexed both ways (a device's list, a group's ordered set of
device IDs) so a group listing costs the group's size.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from trayline.particle.emulator.config import EmulatorConfig
from trayline.particle.emulator.errors import CloudError, bad_request, not_found
from trayline.particle.emulator.records import Device, Group, Product, now_iso

__all__ = ["GroupRules"]

_GROUP_NAME = re.compile(r"[a-z0-9_-]{1,64}")


class GroupRules:
    """Group rules over the state's records (the attributes are :class:`EmulatorState`'s)."""

    config: EmulatorConfig
    devices: dict[str, Device]
    groups: dict[int, dict[str, Group]]
    group_members: dict[tuple[int, str], dict[str, None]]

    if TYPE_CHECKING:

        def touch(self) -> None: ...

        def product_device(self, product: Product, device_id: str) -> Device | None: ...

    # ----------------------------------------------------------------- groups (spec §5)
    @staticmethod
    def valid_group_name(name: str) -> bool:
        return _GROUP_NAME.fullmatch(name) is not None

    def group_name(self, raw: str) -> str:
        """A group name under the configured upper-case rule, or 400."""
        name = raw.strip()
        if self.config.uppercase_group_names == "lowercase":
            name = name.lower()
        if not self.valid_group_name(name):
            raise bad_request(
                "Invalid group name: use 1 to 64 lowercase letters, numbers, dashes or underscores"
            )
        return name

    def _duplicate_group(self) -> CloudError:
        return CloudError(
            self.config.duplicate_group_status,
            {"ok": False, "error": self.config.duplicate_group_error},
        )

    def group(self, product: Product, name: str) -> Group:
        group = self.groups[product.id].get(name)
        if group is None:
            raise not_found(f"Group {name} not found")
        return group

    def new_group(
        self, product: Product, raw_name: str, description: str | None, color: str | None
    ) -> Group:
        """``POST /v1/products/:p/groups``: a valid, new name (a duplicate is refused)."""
        name = self.group_name(raw_name)
        if name in self.groups[product.id]:
            raise self._duplicate_group()
        return self.create_group(product, name, description, color)

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

    def update_group(self, product: Product, group: Group, changes: dict[str, Any]) -> None:
        """Rename and/or redescribe a group; a rename onto an existing name is refused."""
        new_name = changes.get("name")
        if new_name and new_name != group.name:
            new_name = self.group_name(new_name)
            if new_name in self.groups[product.id]:
                raise self._duplicate_group()
            self.rename_group(product, group, new_name)
        if "description" in changes:
            group.description = changes["description"]
        if "color" in changes:
            group.color = changes["color"]
        self.touch()

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
        """Batch ``action=groups`` for one device: add then remove; repeats are no-ops."""
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

    def batch_groups(
        self, product: Product, device_ids: list[str], add: list[str], remove: list[str]
    ) -> None:
        """``PUT /v1/products/:p/devices`` ``action=groups`` (spec §5.4), checked first."""
        add = [self.group_name(g) for g in add]
        remove = [self.group_name(g) for g in remove]
        missing = [name for name in add if name not in self.groups[product.id]]
        if missing and not self.config.batch_add_creates_groups:
            raise bad_request(f"Group {missing[0]} not found")
        devices: list[Device] = []
        for raw in device_ids:
            device = self.product_device(product, raw)
            if device is None:
                if self.config.batch_unknown_devices == "reject":
                    raise bad_request(f"Device {raw} is not in this product")
                continue
            devices.append(device)
        for name in missing:
            self.create_group(product, name)
        for device in devices:
            self.change_groups(device, add, remove)
        self.touch()

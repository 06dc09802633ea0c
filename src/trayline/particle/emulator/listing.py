"""Listings of the local cloud: filter, sort and page product devices and SIMs.

``GET /v1/products/:p/devices`` is how a line finds its devices after import
(spec §8.2), so it is the hottest read path in the benchmarks. A ``groups``
filter walks only the named groups' member lists; a full 15-character serial or
24-character device ID is an index lookup; everything else is a partial,
case-insensitive match over the candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from trayline.particle.emulator.records import Device, Product, Sim
from trayline.particle.emulator.state import EmulatorState

__all__ = ["DeviceQuery", "SimQuery", "list_product_devices", "list_sims"]


@dataclass(frozen=True, slots=True)
class DeviceQuery:
    """The query of ``GET /v1/products/:p/devices``, already typed."""

    device_id: str | None = None
    groups: list[str] | None = None
    device_name: str | None = None
    serial_number: str | None = None
    quarantined: bool | None = None
    sort_attr: str | None = None
    sort_dir: str = "asc"
    page: int = 1
    per_page: int = 25


@dataclass(frozen=True, slots=True)
class SimQuery:
    iccid: str | None = None
    device_id: str | None = None
    device_name: str | None = None
    page: int = 1
    per_page: int = 25


def _candidates(
    state: EmulatorState, product: Product, query: DeviceQuery
) -> tuple[Iterable[str], DeviceQuery]:
    """The device IDs worth filtering, and what is left of the query to apply to them."""
    members = state.product_devices[product.id]
    if query.groups:
        seen: dict[str, None] = {}
        for name in query.groups:
            seen.update(state.group_members.get((product.id, name.strip().lower()), {}))
        return seen, query
    serial = (query.serial_number or "").strip()
    if len(serial) == 15:
        found = state.by_serial.get(serial.upper())
        rest = DeviceQuery(query.device_id, None, query.device_name, None, query.quarantined)
        return ([found] if found in members else []), rest
    device_id = (query.device_id or "").strip()
    if len(device_id) == 24:
        key = device_id.lower()
        rest = DeviceQuery(None, None, query.device_name, query.serial_number, query.quarantined)
        return ([key] if key in members else []), rest
    return members, query


def list_product_devices(
    state: EmulatorState, product: Product, query: DeviceQuery
) -> tuple[list[Device], int]:
    """One page of a product's devices and the page count (spec §8.2)."""
    candidates, rest = _candidates(state, product, query)
    devices: Iterator[Device] = (state.devices[i] for i in candidates)
    if rest.device_id:
        needle_id = rest.device_id.strip().lower()
        devices = (d for d in devices if needle_id in d.id)
    if rest.serial_number:
        needle_sn = rest.serial_number.strip().upper()
        devices = (d for d in devices if needle_sn in d.serial_number)
    if rest.device_name:
        needle_name = rest.device_name.strip().lower()
        devices = (d for d in devices if d.name and needle_name in d.name.lower())
    if rest.quarantined is not None:
        devices = (d for d in devices if d.quarantined == rest.quarantined)
    matched = list(devices)
    if query.sort_attr:
        key_of = _SORT_KEYS.get(query.sort_attr, _SORT_KEYS["deviceId"])
        matched.sort(key=key_of, reverse=query.sort_dir.lower() == "desc")
    return _page(matched, query.page, query.per_page)


def list_sims(state: EmulatorState, sims: list[Sim], query: SimQuery) -> tuple[list[Sim], int]:
    """Filter a list of SIMs (``iccid``, ``deviceId``, ``deviceName``) and page it."""
    if query.iccid:
        needle = query.iccid.strip()
        sims = [s for s in sims if needle in s.iccid]
    if query.device_id:
        needle = query.device_id.strip().lower()
        sims = [s for s in sims if s.last_device_id and needle in s.last_device_id]
    if query.device_name:
        needle = query.device_name.strip().lower()
        sims = [s for s in sims if needle in (state.sim_device_name(s) or "").lower()]
    return _page(sims, query.page, query.per_page)


def _page(items: list[Any], page: int, per_page: int) -> tuple[list[Any], int]:
    start = (page - 1) * per_page
    return items[start : start + per_page], math.ceil(len(items) / per_page)


_SORT_KEYS: dict[str, Callable[[Device], Any]] = {
    "deviceId": lambda d: d.id,
    "deviceName": lambda d: (d.name or "").lower(),
    "firmwareVersion": lambda d: d.firmware_version or 0,
    "lastConnection": lambda d: d.last_heard or "",
    "serialNumber": lambda d: d.serial_number,
}

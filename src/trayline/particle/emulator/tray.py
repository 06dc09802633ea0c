"""``--tray DIR``: make the local cloud know exactly the devices of a virtual tray.

A virtual tray (written by ``trayline.virtual``, or by hand) is a folder whose
``devices.json`` lists the devices on it. The cloud reads only that file — it
never imports the simulator — so the file is the contract between the two:

.. code-block:: json

    [{"device_id": "0123456789abcdef01234567", "serial_number": "P028AB1234567XY",
      "iccid": "8901234567890123452", "imei": "352345678901235", "sku": "BRN404",
      "platform_id": 13, "faults": {}, "readings": {}}]

Every entry needs those eight fields: ``device_id`` (24 hex), ``serial_number``
(15 letters and digits), ``iccid`` (18–21 digits from 89), ``imei`` (15 digits
with a valid Luhn check digit), ``sku`` (a known SKU), ``platform_id`` (that
SKU's platform), and ``faults`` and ``readings`` (objects, for the simulator;
the cloud ignores their contents). ``mobile_secret`` is optional (invented if
absent or ``null``, as for Gen 2 devices, which have none); other fields are
ignored. Identifiers are checked with :mod:`trayline.core.ids`, the same rules
trayline applies to a scan.

The file is checked whole before anything is loaded: a bad entry is one
:class:`TrayFileError` naming the file, the index and the field.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from trayline.core.ids import DeviceId, Iccid, Imei, InvalidIdentifier, SerialNumber
from trayline.core.skus import Sku, UnknownSku, get_sku
from trayline.particle.emulator.factory import FactoryUnit, make_secret
from trayline.particle.emulator.records import Device
from trayline.particle.emulator.state import EmulatorState

__all__ = ["TRAY_FILE", "TrayFileError", "add_tray", "read_tray"]

TRAY_FILE = "devices.json"
_IDENTIFIERS = {
    "device_id": DeviceId.parse,
    "serial_number": SerialNumber.parse,
    "iccid": Iccid.parse,
    "imei": Imei.parse,
}
_OBJECTS = ("faults", "readings")
_SECRET = re.compile(r"[\x21-\x7e]{1,64}")  # as a sticker scan reads it (trayline.core.ids)


class TrayFileError(ValueError):
    """A tray file that cannot be loaded; the message is one line naming file, index, field."""


def read_tray(folder: Path, rng: random.Random) -> list[FactoryUnit]:
    """The devices of ``folder/devices.json``, all checked, or :class:`TrayFileError`."""
    path = folder / TRAY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrayFileError(f"{path}: not found (--tray names the folder that holds it)") from None
    except OSError as exc:
        raise TrayFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TrayFileError(f"{path}: not UTF-8 text") from None
    except ValueError as exc:
        raise TrayFileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise TrayFileError(f"{path}: expected a JSON list of devices, got {type(data).__name__}")
    units: list[FactoryUnit] = []
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(data):
        unit = _unit(path, index, entry, rng)
        for field in ("id", "serial_number", "iccid", "imei"):
            value = getattr(unit, field)
            if value in first_seen:
                name = "device_id" if field == "id" else field
                raise TrayFileError(
                    f"{path}: [{index}].{name}: {value} is also device [{first_seen[value]}]"
                )
            first_seen[value] = index
        units.append(unit)
    return units


def _unit(path: Path, index: int, entry: object, rng: random.Random) -> FactoryUnit:
    where = f"{path}: [{index}]"
    if not isinstance(entry, dict):
        raise TrayFileError(f"{where}: expected an object, got {type(entry).__name__}")
    for name in (*_IDENTIFIERS, "sku", "platform_id", *_OBJECTS):
        if name not in entry:
            raise TrayFileError(f"{where}.{name}: missing")
    ids: dict[str, str] = {}
    for name, parse in _IDENTIFIERS.items():
        try:
            ids[name] = parse(entry[name])
        except InvalidIdentifier as exc:
            raise TrayFileError(f"{where}.{name}: {exc}") from None
    sku = _sku(where, entry)
    for name in _OBJECTS:
        if not isinstance(entry[name], dict):
            raise TrayFileError(f"{where}.{name}: expected an object")
    secret = entry.get("mobile_secret")
    if secret is None:
        secret = make_secret(rng)
    elif not (isinstance(secret, str) and _SECRET.fullmatch(secret)):
        raise TrayFileError(f"{where}.mobile_secret: expected 1 to 64 printable ASCII characters")
    return FactoryUnit(
        id=ids["device_id"],
        serial_number=ids["serial_number"],
        iccid=ids["iccid"],
        imei=ids["imei"],
        mobile_secret=secret,
        platform_id=sku.platform_id,
        sku=sku.name,
        sim_embedded=not sku.separate_sim,
    )


def _sku(where: str, entry: dict[str, Any]) -> Sku:
    name, platform_id = entry["sku"], entry["platform_id"]
    if not isinstance(name, str):
        raise TrayFileError(f"{where}.sku: expected text like BRN404")
    try:
        sku = get_sku(name)
    except UnknownSku as exc:
        raise TrayFileError(f"{where}.sku: {exc}") from None
    if isinstance(platform_id, bool) or not isinstance(platform_id, int):
        raise TrayFileError(f"{where}.platform_id: expected a whole number")
    if platform_id != sku.platform_id:
        raise TrayFileError(
            f"{where}.platform_id: {platform_id} is not the platform of {sku.name} "
            f"({sku.platform_id})"
        )
    return sku


def add_tray(
    state: EmulatorState, units: list[FactoryUnit], source: Path, online: bool = False
) -> list[Device]:
    """Store a tray's devices (not in any product), each with its SIM record.

    A device the cloud already has (a resumed ``--state``) is left as it is; an
    identifier that belongs to a *different* device is a :class:`TrayFileError`,
    found before anything is stored.
    """
    fresh: list[FactoryUnit] = []
    for index, unit in enumerate(units):
        known = state.devices.get(unit.id)
        if known is not None:
            if (known.serial_number, known.iccid, known.imei) != (
                unit.serial_number,
                unit.iccid,
                unit.imei,
            ):
                raise TrayFileError(
                    f"{source}: [{index}].device_id: {unit.id} is already in the cloud "
                    f"with another serial, ICCID or IMEI"
                )
            continue
        for field, index_of in (
            ("serial_number", state.by_serial),
            ("iccid", state.by_iccid),
            ("imei", state.by_imei),
        ):
            owner = index_of.get(getattr(unit, field))
            if owner is not None:
                raise TrayFileError(
                    f"{source}: [{index}].{field}: already belongs to device {owner} in the cloud"
                )
        fresh.append(unit)
    return state.add_units(fresh, online=online)

"""Who a virtual device is: its IDs, and the silicon registers they are read from.

A Particle device ID is not stored anywhere a programmer writes: it is read
from silicon. On the nRF52840 it is ``"e00fce68"`` followed by the 8 bytes of
``FICR.DEVICEID`` at 0x10000060; on the Electron's STM32F205 it is the 12 bytes
of the unique ID at 0x1FFF7A10 (spec §2.4). So a virtual nRF52840 device's ID
always starts with ``e00fce68``, and its FICR holds the rest — a backend that
reads the registers and applies the rule gets the ID in ``devices.json``.

:func:`make_identity` invents a unit of a SKU the way Particle's factory would
label it: serial with the SKU's prefix, a SIM ICCID (``89``…, Luhn check
digit), a modem IMEI (Luhn), a 15-character mobile secret on Gen 3 (Gen 2
stickers carry only the serial), all drawn from one ``random.Random`` so a
seeded tray is the same every time.
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass

from trayline.core.ids import luhn_check_digit
from trayline.core.platforms import NRF52840_PLATFORM_IDS
from trayline.core.skus import Sku

__all__ = [
    "FICR_BASE",
    "FICR_DEVICEID",
    "NRF_DEVICE_ID_PREFIX",
    "STM32_UID",
    "DeviceIdentity",
    "id_register_bytes",
    "mac_address",
    "make_identity",
]

FICR_BASE = 0x10000000
FICR_DEVICEID = 0x10000060
"""nRF52840 ``FICR.DEVICEID[0..1]``: 8 bytes, the device ID after ``e00fce68``."""
NRF_DEVICE_ID_PREFIX = "e00fce68"
"""``0x68CE0FE0`` stored little-endian: the first 4 bytes of every Gen 3 device ID."""
STM32_UID = 0x1FFF7A10
"""STM32F2 96-bit unique ID: the 12 bytes are the Electron's device ID."""

_ALNUM = string.ascii_uppercase + string.digits

# Cell radio (modem firmware) versions the `i` command prints as "Cell Radio Version".
# Illustrative strings in each modem's own format, not a claim about shipped units.
_CELL_FIRMWARE = {
    "u-blox SARA-R410M": "L0.0.00.00.05.12",
    "u-blox SARA-R510S": "03.15",
    "u-blox SARA-U201": "23.60",
    "u-blox SARA-U260": "23.20",
    "u-blox SARA-U270": "23.20",
    "u-blox SARA-G350": "08.90",
    "Quectel BG96-MC": "BG96MAR02A07M1G",
    "Quectel EG91-E": "EG91EFBR06A06M4G",
    "Quectel EG91-EX": "EG91EXGAR08A04M1G",
}


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Everything printed on, or burnt into, one unit; ``mobile_secret`` only on Gen 3."""

    device_id: str
    serial_number: str
    iccid: str
    imei: str
    mobile_secret: str | None
    sku: str
    platform_id: int
    cell_radio_version: str = ""

    def __repr__(self) -> str:  # the mobile secret never appears in logs
        return (
            f"DeviceIdentity(device_id={self.device_id!r}, serial_number={self.serial_number!r}, "
            f"sku={self.sku!r})"
        )


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def make_identity(sku: Sku, rng: random.Random) -> DeviceIdentity:
    """Invent one unit of ``sku``; uniqueness within a tray is the caller's job."""
    if sku.platform_id in NRF52840_PLATFORM_IDS:
        device_id = NRF_DEVICE_ID_PREFIX + f"{rng.getrandbits(64):016x}"
    else:
        device_id = f"{rng.getrandbits(96):024x}"
    prefix = rng.choice(sku.serial_prefixes)
    serial = prefix + "".join(rng.choice(_ALNUM) for _ in range(15 - len(prefix)))
    iccid_body = "8901" + _digits(rng, 14)  # 19 digits with the check digit, like Particle SIMs
    imei_body = "35" + _digits(rng, 12)
    secret = "".join(rng.choice(_ALNUM) for _ in range(15)) if sku.generation >= 3 else None
    return DeviceIdentity(
        device_id=device_id,
        serial_number=serial,
        iccid=iccid_body + luhn_check_digit(iccid_body),
        imei=imei_body + luhn_check_digit(imei_body),
        mobile_secret=secret,
        sku=sku.name,
        platform_id=sku.platform_id,
        cell_radio_version=_CELL_FIRMWARE.get(sku.modem, ""),
    )


def id_register_bytes(platform_id: int, device_id: str) -> tuple[int, bytes]:
    """``(address, bytes)`` of the silicon register a device ID is read from.

    Raises ``ValueError`` when a Gen 3 ID does not start with ``e00fce68``: such
    an ID cannot come from an nRF52840's FICR.
    """
    if platform_id in NRF52840_PLATFORM_IDS:
        if not device_id.startswith(NRF_DEVICE_ID_PREFIX):
            raise ValueError(
                f"device ID {device_id} cannot be an nRF52840's: Gen 3 IDs start with "
                f"{NRF_DEVICE_ID_PREFIX} (the rest is FICR.DEVICEID at {FICR_DEVICEID:#x})"
            )
        return FICR_DEVICEID, bytes.fromhex(device_id[len(NRF_DEVICE_ID_PREFIX) :])
    return STM32_UID, bytes.fromhex(device_id)


def mac_address(device_id: str) -> str:
    """A stable, locally administered MAC (what `m` prints), derived from the device ID."""
    raw = bytearray(hashlib.sha256(device_id.encode()).digest()[:6])
    raw[0] = (raw[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in raw)

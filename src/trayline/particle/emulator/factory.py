"""The factory: realistic identities for devices that do not exist yet.

Rehearsals, tests and benchmarks need devices the way a tray list describes
them: a 24-hex device ID, a 15-character serial number that starts with the
SKU's four-character prefix, an ICCID (digits from ``89`` with a Luhn check
digit, as real SIM ICCIDs carry), an IMEI (15 digits, Luhn check digit) and a
15-character mobile secret. Everything comes from one ``random.Random`` so a
seeded emulator makes the same devices every run.

The facts per SKU (platform, prefix, embedded or separate 4FF SIM) come from
:mod:`trayline.core.skus`; this module invents only the random parts.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from trayline.core.ids import luhn_check_digit
from trayline.core.skus import Sku

__all__ = ["FactoryUnit", "make_secret", "make_unit"]

_SERIAL_CHARS = string.ascii_uppercase + string.digits
_SECRET_CHARS = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class FactoryUnit:
    """One device as it leaves Particle's factory, before any product owns it."""

    id: str
    serial_number: str
    iccid: str
    imei: str
    mobile_secret: str
    platform_id: int
    sku: str
    sim_embedded: bool


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def make_secret(rng: random.Random) -> str:
    """A 15-character mobile secret (A–Z, 0–9), as printed after the serial on the sticker."""
    return "".join(rng.choice(_SECRET_CHARS) for _ in range(15))


def make_unit(sku: Sku, rng: random.Random) -> FactoryUnit:
    """Invent one unit of ``sku``; uniqueness against existing devices is the caller's job."""
    device_id = f"{rng.getrandbits(96):024x}"
    prefix = sku.serial_prefixes[0]
    serial = prefix + "".join(rng.choice(_SERIAL_CHARS) for _ in range(15 - len(prefix)))
    iccid_body = "8901" + _digits(rng, 14)  # 18 digits + check digit = 19, like Particle SIMs
    iccid = iccid_body + luhn_check_digit(iccid_body)
    imei_body = "35" + _digits(rng, 12)  # a reporting-body TAC prefix, then the serial part
    imei = imei_body + luhn_check_digit(imei_body)
    secret = make_secret(rng)
    return FactoryUnit(
        id=device_id,
        serial_number=serial,
        iccid=iccid,
        imei=imei,
        mobile_secret=secret,
        platform_id=sku.platform_id,
        sku=sku.name,
        sim_embedded=not sku.separate_sim,
    )

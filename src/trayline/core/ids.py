"""Identifiers of the line: validated once at the edge, then trusted everywhere.

A string typed by an operator, scanned from a sticker or read from a tray list
becomes a :class:`DeviceId`, :class:`SerialNumber`, :class:`Iccid`,
:class:`Imei` or :class:`GroupName` here, and nowhere else. Each type is a
``str`` subclass holding the *normalised* form (lowercase device IDs, uppercase
serials, digits-only ICCIDs), so the rest of trayline compares, stores and sends
them without thinking about case or stray whitespace.

Every parser raises :class:`InvalidIdentifier` and nothing else, with a message
that says what was wrong and what a valid value looks like; the message never
repeats a mobile secret.

Facts (shared/spec/particle-cloud-api.md §10): device IDs are 24 hex digits,
serial numbers 15 uppercase alphanumerics whose first four characters name the
SKU family, ICCIDs 18–21 digits starting with ``89``, IMEIs 15 digits with a Luhn
check digit, group names ``[a-z0-9_-]{1,64}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Self

__all__ = [
    "DeviceId",
    "GroupName",
    "Iccid",
    "Imei",
    "InvalidIdentifier",
    "ProductRef",
    "SerialNumber",
    "Sticker",
    "parse_identifier",
    "parse_sticker",
]

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_SERIAL = re.compile(r"[A-Z0-9]{15}")
_ICCID = re.compile(r"89[0-9]{16,19}")
_IMEI = re.compile(r"[0-9]{15}")
_GROUP = re.compile(r"[a-z0-9_-]{1,64}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SECRET = re.compile(r"[\x21-\x7e]{1,64}")
_MAX_SHOWN = 40


class InvalidIdentifier(ValueError):
    """A value is not a valid identifier of the kind asked for.

    ``kind`` names the identifier ("device ID", "serial number", …) so callers
    that add a file and line can build a complete message.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _shown(value: str) -> str:
    """Quote a bad value for an error message, cut short and made printable."""
    text = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "…"
    return repr(text)


def _clean(value: object, kind: str) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(kind, f"{kind} must be text, got {type(value).__name__}")
    return value.strip()


class DeviceId(str):
    """A Particle device ID: 24 hex digits, always held in lowercase."""

    __slots__ = ()
    kind = "device ID"

    @classmethod
    def parse(cls, value: object) -> Self:
        text = _clean(value, cls.kind)
        if not _HEX24.fullmatch(text):
            raise InvalidIdentifier(
                cls.kind,
                f"{_shown(text)} is not a device ID: expected 24 hexadecimal characters "
                f"(e.g. 0123456789abcdef01234567), got {len(text)} characters",
            )
        return cls(text.lower())


class SerialNumber(str):
    """A Particle serial number: 15 uppercase letters and digits.

    The first four characters are the SKU-family prefix printed by the factory
    (``P028`` for BRN404, ``E26K`` for an E260 kit); :attr:`prefix` gives it.
    """

    __slots__ = ()
    kind = "serial number"

    @classmethod
    def parse(cls, value: object) -> Self:
        text = _clean(value, cls.kind).upper()
        if not _SERIAL.fullmatch(text):
            raise InvalidIdentifier(
                cls.kind,
                f"{_shown(text)} is not a serial number: expected 15 letters and digits "
                f"(e.g. P028AB1234567XY), got {len(text)} characters",
            )
        return cls(text)

    @property
    def prefix(self) -> str:
        return self[:4]


class Iccid(str):
    """A SIM's ICCID: 18–21 digits starting with 89 (the telecom industry code)."""

    __slots__ = ()
    kind = "ICCID"

    @classmethod
    def parse(cls, value: object) -> Self:
        text = _clean(value, cls.kind)
        if not _ICCID.fullmatch(text):
            raise InvalidIdentifier(
                cls.kind,
                f"{_shown(text)} is not an ICCID: expected 18 to 21 digits starting with 89 "
                f"(e.g. 8934076500002589174)",
            )
        return cls(text)


def luhn_ok(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Luhn check digit of the rest."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = ord(char) - 48
        if position % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    for digit in "0123456789":
        if luhn_ok(body + digit):
            return digit
    raise AssertionError("unreachable: one of ten digits always fits")


class Imei(str):
    """A modem's IMEI: 15 digits, the last a Luhn check digit."""

    __slots__ = ()
    kind = "IMEI"

    @classmethod
    def parse(cls, value: object) -> Self:
        text = _clean(value, cls.kind)
        if not _IMEI.fullmatch(text):
            raise InvalidIdentifier(cls.kind, f"{_shown(text)} is not an IMEI: expected 15 digits")
        if not luhn_ok(text):
            raise InvalidIdentifier(
                cls.kind,
                f"{_shown(text)} is not an IMEI: the check digit is wrong "
                f"(a digit was probably mistyped or misread)",
            )
        return cls(text)


class GroupName(str):
    """A product device group name: ``[a-z0-9_-]{1,64}``.

    Upper case is folded to lower case before checking, because the cloud's
    behaviour with upper case is unconfirmed and the lower-case form is always
    accepted.
    """

    __slots__ = ()
    kind = "group name"

    @classmethod
    def parse(cls, value: object) -> Self:
        text = _clean(value, cls.kind).lower()
        if not _GROUP.fullmatch(text):
            raise InvalidIdentifier(
                cls.kind,
                f"{_shown(text)} is not a valid group name: use 1 to 64 lowercase letters, "
                f"digits, '-' or '_' (e.g. 20261124_0050)",
            )
        return cls(text)


@dataclass(frozen=True, slots=True)
class ProductRef:
    """A product as the API path takes it: a numeric ID or a slug."""

    value: str

    kind = "product"

    @classmethod
    def parse(cls, value: object) -> ProductRef:
        text = _clean(value, cls.kind)
        if text.isascii() and text.isdigit() and 0 < len(text) <= 10 and int(text) > 0:
            return cls(str(int(text)))
        if _SLUG.fullmatch(text):
            return cls(text)
        raise InvalidIdentifier(
            cls.kind,
            f"{_shown(text)} is not a product: give the numeric product ID (e.g. 12345) "
            f"or the product slug (e.g. my-product-v1)",
        )

    @property
    def is_id(self) -> bool:
        return self.value.isdigit()

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Sticker:
    """What a data-matrix scan of a Particle sticker holds.

    Gen 3 stickers carry ``SERIAL<space>MOBILESECRET``; Gen 2 only the serial.
    The mobile secret is needed for BLE setup, never for manufacturing, so it is
    kept out of ``repr`` and every log line.
    """

    serial: SerialNumber
    mobile_secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        secret = ", mobile_secret=<hidden>" if self.mobile_secret else ""
        return f"Sticker(serial={self.serial!r}{secret})"


def parse_sticker(text: object) -> Sticker:
    """Split a sticker scan into serial number and (hidden) mobile secret.

    Scanners add CR/LF or tabs as suffixes; those are stripped. Anything after the
    first run of whitespace is the mobile secret. The secret itself never appears
    in an error message.
    """
    raw = _clean(text, "sticker")
    if not raw:
        raise InvalidIdentifier(
            "sticker", "empty sticker scan: expected 'SERIAL' or 'SERIAL SECRET'"
        )
    parts = raw.split(None, 1)
    try:
        serial = SerialNumber.parse(parts[0])
    except InvalidIdentifier as err:
        raise InvalidIdentifier(
            "sticker", f"sticker scan does not start with a serial: {err}"
        ) from None
    if len(parts) == 1:
        return Sticker(serial)
    secret = parts[1].strip()
    if not _SECRET.fullmatch(secret):
        raise InvalidIdentifier(
            "sticker",
            f"sticker for {serial}: the text after the serial is not a mobile secret "
            f"(expected one word of printable characters)",
        )
    return Sticker(serial, secret)


def parse_identifier(value: object) -> DeviceId | SerialNumber | Iccid | Imei:
    """Classify an identifier the cloud's import accepts (device ID, serial, ICCID, IMEI).

    Device IDs are tried first: a 24-hex string is never a serial (15 chars) or
    an all-digit ICCID/IMEI, so the order only matters for clarity.
    """
    text = _clean(value, "identifier")
    if len(text) == 24:
        return DeviceId.parse(text)
    digits = text.isascii() and text.isdigit()
    if len(text) == 15 and digits and luhn_ok(text):
        return Imei.parse(text)
    if digits and text.startswith("89"):
        return Iccid.parse(text)
    if len(text) == 15:
        return SerialNumber.parse(text)
    raise InvalidIdentifier(
        "identifier",
        f"{_shown(text)} is not a device ID (24 hex), serial number (15 letters/digits), "
        f"ICCID (18-21 digits from 89) or IMEI (15 digits)",
    )

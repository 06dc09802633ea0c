"""One value of a row: splitting cells, unquoting, serials and sticker scans, ICCIDs.

Every reader in :mod:`trayline.inputs` turns text into identifiers through these
functions, so a sticker's mobile secret is dropped in one place and a value that
is not ASCII is explained in one way.
"""

from __future__ import annotations

import csv

from trayline.core.ids import (
    Iccid,
    Imei,
    InvalidIdentifier,
    SerialNumber,
    parse_identifier,
    parse_sticker,
)
from trayline.inputs.results import MAX_LINE_CHARS

__all__ = [
    "RowError",
    "long_line",
    "non_ascii",
    "parse_iccid",
    "parse_serial",
    "split_cells",
    "unquote",
]


class RowError(Exception):
    """One row cannot be used; the message goes into an :class:`InputProblem`."""


def split_cells(line: str, delimiter: str) -> list[str]:
    """Split one line into stripped cells; raises ``csv.Error`` on bad quoting.

    Lines without a quote are split directly (fast path for big tray lists);
    quoted ones go through the ``csv`` module, strictly, one line at a time: a
    value may not span lines, so an unbalanced quote is caught on its own line
    instead of swallowing the rest of the file.
    """
    if '"' not in line:
        return [cell.strip() for cell in line.split(delimiter)]
    reader = csv.reader([line], delimiter=delimiter, strict=True, skipinitialspace=True)
    return [cell.strip() for cell in next(reader, [])]


def non_ascii(value: str, what: str) -> str:
    for char in value:
        if not char.isascii():
            return (
                f"{what} contains the non-ASCII character U+{ord(char):04X} ({char!r}): "
                f"identifiers are plain letters and digits (typographic quotes, "
                f"non-breaking or zero-width spaces pasted from a document?)"
            )
    raise AssertionError("unreachable: called only for non-ASCII text")


def parse_serial(value: str) -> SerialNumber:
    """A serial, or a sticker scan ``SERIAL SECRET`` whose secret is dropped here."""
    is_sticker = len(value.split(None, 1)) > 1
    serial = parse_sticker(value).serial if is_sticker else SerialNumber.parse(value)
    if serial.isdigit():
        # Every Particle serial prefix has a letter (core/skus.py), so 15 digits
        # are an IMEI whose check digit does not match: a misread or a typo.
        raise InvalidIdentifier(
            SerialNumber.kind,
            f"{serial} is 15 digits but not a valid IMEI (the check digit is wrong) "
            f"and not a serial number (serials start with a letter-bearing prefix "
            f"such as P028): a digit was probably mistyped or misread",
        )
    return serial


def unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return token[1:-1].strip()
    return token


def parse_iccid(value: str) -> Iccid:
    """An ICCID from a SIM pack or tray list; names what the value is when it is not one."""
    try:
        return Iccid.parse(value)
    except InvalidIdentifier as err:
        try:
            other = parse_identifier(value)
        except InvalidIdentifier:
            raise err from None
        article = "an" if other.kind == Imei.kind else "a"
        raise RowError(f"{other} is {article} {other.kind}, not an ICCID") from None


def long_line(raw: str) -> str:
    return (
        f"line is {len(raw):,} characters long (the limit is {MAX_LINE_CHARS:,}): "
        f"not a row of identifiers (binary data, or a list joined into one line?)"
    )

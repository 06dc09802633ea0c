"""What a scan is: a sticker, a part barcode, a bench-card command, or nothing we know.

A keyboard-wedge scanner types one line per scan. The line is classified here,
purely, against the line's configured parts; the runner then acts. A sticker is
``SERIAL`` or ``SERIAL SECRET`` (Gen 3): the mobile secret is dropped at once
and never logged, stored or echoed. A part barcode must match one configured
pattern; which part it is comes from the first pattern that matches among the
parts the current unit still lacks, then among all parts (so a battery scanned
twice is recognised as a battery, not as "unknown").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trayline.core.ids import InvalidIdentifier, SerialNumber, parse_sticker
from trayline.settings.line import PartSpec

__all__ = ["COMMANDS", "Command", "PartScan", "ScanKind", "StickerScan", "Unknown", "classify"]

COMMANDS = frozenset({"YES", "NO", "RETEST"})
_MAX_SHOWN = 40


@dataclass(frozen=True, slots=True)
class StickerScan:
    serial: SerialNumber
    had_secret: bool


@dataclass(frozen=True, slots=True)
class PartScan:
    part: PartSpec
    serial: str


@dataclass(frozen=True, slots=True)
class Command:
    word: str


@dataclass(frozen=True, slots=True)
class Unknown:
    text: str
    """Shown to the operator: cut short, never the part after a space (it may be a secret)."""
    why: str


ScanKind = StickerScan | PartScan | Command | Unknown


def _shown(text: str) -> str:
    first = text.split(None, 1)[0] if text.split() else text
    return first if len(first) <= _MAX_SHOWN else first[:_MAX_SHOWN] + "…"


def classify(line: str, parts: Sequence[PartSpec], missing: Sequence[str] = ()) -> ScanKind | None:
    """Classify one scanned line; None for a blank line (scanners send stray CR/LF)."""
    text = line.strip()
    if not text:
        return None
    if text.upper() in COMMANDS:
        return Command(text.upper())
    ordered = [p for p in parts if p.name in missing] + [p for p in parts if p.name not in missing]
    for spec in ordered:
        if spec.pattern.fullmatch(text):
            return PartScan(spec, text)
    words = text.split()
    if len(words[0]) == 15 and len(words) <= 2:
        try:
            sticker = parse_sticker(text)
        except InvalidIdentifier as exc:
            return Unknown(_shown(text), str(exc))
        return StickerScan(sticker.serial, sticker.mobile_secret is not None)
    names = ", ".join(p.name for p in parts)
    expected = f"a device sticker{', ' + names if names else ''} or YES/NO/RETEST"
    return Unknown(_shown(text), f"not {expected}")

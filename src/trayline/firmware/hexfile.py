"""One Intel HEX for the whole device, or a per-file plan, from a set of modules.

A contract manufacturer's programmer takes one file and writes it over SWD.
Particle's restore images and its Hex Generator set the shape this follows
(shared/spec/device-side.md §5.6): on Gen 3 the UICR words come first
(bootloader address and reset pin), then every module at its
``module_start_address`` in address order, and the user part *last*, opened by
its own Extended Linear Address record, so that Particle's Hex Generator (which
cuts from that record to the end of file and splices in a new user binary) can
still swap the application in a hex trayline wrote. A radio-stack module
carries DROP_MODULE_INFO, so its 24-byte prefix is not written (§1.1, §2.5).

The encoder is ours (:mod:`trayline.core.hexrecords`, shared with the nrfjprog and
DAPLink backends) because the record order matters (``intelhex`` writes in
address order, which would put the UICR last and give the user part no ELA
record of its own); reading back uses ``intelhex``, an independent decoder, so
a round trip really checks the file.

Programmers that take binaries get :func:`bin_plan` instead: which file, from
which byte, to which address, and the erase range that covers it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intelhex import IntelHex

from trayline.core.hexrecords import encode_hex_blocks
from trayline.core.modules import Module, ModuleFunction
from trayline.core.platforms import (
    GEN3_UICR_WORDS,
    NRF52840_PLATFORM_IDS,
    erase_range,
    platform_name,
)

__all__ = [
    "HexError",
    "HexImage",
    "Placement",
    "Segment",
    "bin_plan",
    "build_hex",
    "encode_hex",
    "read_hex",
]


class HexError(ValueError):
    """The modules cannot be laid out as one image (overlap, no host-flash address)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """A module file and what its prefix says: the unit hexfile and programmers work in."""

    name: str
    module: Module
    data: bytes

    @property
    def address(self) -> int:
        return self.module.start_address

    @property
    def skip(self) -> int:
        """Bytes at the start of the file that are not written (the dropped prefix)."""
        return self.module.prefix_size if self.module.drop_module_info else 0

    def image(self) -> bytes:
        return self.module.flash_image(self.data)

    @property
    def in_host_flash(self) -> bool:
        """NCP modules are forwarded to the ESP32 by Device OS; SWD cannot write them."""
        return self.module.function != ModuleFunction.NCP_FIRMWARE


@dataclass(frozen=True, slots=True)
class Segment:
    """Contiguous bytes at an address, with a label for messages."""

    address: int
    data: bytes
    label: str

    @property
    def end(self) -> int:
        return self.address + len(self.data)


@dataclass(frozen=True, slots=True)
class HexImage:
    """Segments in the order they are written, and the modules left out (and why)."""

    segments: tuple[Segment, ...]
    skipped: tuple[str, ...] = field(default=())

    def encode(self) -> str:
        return encode_hex(self.segments)


def _uicr_segments() -> list[Segment]:
    out: list[Segment] = []
    for address, value in sorted(GEN3_UICR_WORDS.items()):
        if out and out[-1].end == address:
            last = out.pop()
            out.append(Segment(last.address, last.data + value.to_bytes(4, "little"), "UICR"))
        else:
            out.append(Segment(address, value.to_bytes(4, "little"), "UICR"))
    return out


def build_hex(placements: Sequence[Placement], platform_id: int, *, uicr: bool = True) -> HexImage:
    """Lay the modules out for one hex; refuse overlaps with both file names in the message."""
    segments: list[Segment] = []
    skipped: list[str] = []
    for p in placements:
        if not p.in_host_flash:
            skipped.append(f"{p.name}: NCP firmware is not in host flash (update it over USB)")
            continue
        segments.append(Segment(p.address, p.image(), p.name))
    by_address = sorted(segments, key=lambda s: s.address)
    for before, after in itertools.pairwise(by_address):
        if after.address < before.end:
            raise HexError(
                f"{before.label} ({before.address:#010x}-{before.end:#010x}) overlaps "
                f"{after.label} ({after.address:#010x}-{after.end:#010x})"
            )
    users = {p.name for p in placements if p.module.function == ModuleFunction.USER_PART}
    ordered = [s for s in by_address if s.label not in users]
    ordered += [s for s in by_address if s.label in users]
    if uicr and platform_id in NRF52840_PLATFORM_IDS:
        ordered = _uicr_segments() + ordered
    return HexImage(tuple(ordered), tuple(skipped))


def encode_hex(segments: Iterable[Segment]) -> str:
    """Intel HEX text of the segments in the order given (:mod:`trayline.core.hexrecords`):
    an ELA (type 04) record opens every segment and every 64 KiB crossing, 16-byte data
    records, one EOF record."""
    return encode_hex_blocks((segment.address, segment.data) for segment in segments)


def read_hex(source: str | Path) -> IntelHex:
    """Decode an Intel HEX file with ``intelhex`` (independent of our encoder)."""
    ih = IntelHex()
    ih.loadhex(str(source))
    return ih


def bin_plan(placements: Sequence[Placement], platform_id: int) -> list[dict[str, Any]]:
    """One entry per module in flashing order: file, bytes to skip, address, erase range.

    ``skip`` is non-zero for a radio stack (its prefix is not written); a
    programmer that cannot skip bytes can be given ``hex`` output instead.
    """
    plan: list[dict[str, Any]] = []
    for p in placements:
        image_size = len(p.data) - p.skip
        end = p.address + image_size
        erase = erase_range(platform_id, p.address, end) if p.in_host_flash else None
        plan.append(
            {
                "file": p.name,
                "module": p.module.label(),
                "address": p.address,
                "address_hex": f"{p.address:#010x}",
                "skip": p.skip,
                "size": image_size,
                "erase_start": erase[0] if erase else None,
                "erase_end": erase[1] if erase else None,
                "interface": "swd" if p.in_host_flash else "usb (NCP, forwarded by Device OS)",
                "sha256": p.module.sha256,
                "platform": platform_name(platform_id),
            }
        )
    return plan

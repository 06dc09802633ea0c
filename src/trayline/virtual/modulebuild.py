"""Build real-format module binaries, so a fresh virtual tray holds firmware like a real one.

Particle's factory ships units with Device OS modules in flash; a virtual tray
has to as well, or "what is on the device?" would always answer "nothing" and
a smart flash would never skip anything. The modules are generated here with
the exact layout and checksums Device OS's build writes (spec §1.1, §1.5): the
24-byte prefix at the MCU's prefix offset (0x200 after an nRF52840 vector
table, 0x184 after an STM32F2 boot table), a deterministic body, the 40-byte
suffix (product id/version, SHA-256 of everything before the SHA field) and
the big-endian CRC-32. The SoftDevice carries its info structure (magic,
size, firmware ID) where Device OS looks for it, because its prefix is dropped
when written. :func:`trayline.core.modules.parse_module` reads every module
built here like a real one (the tests check that).

The bodies are filler, not code: a virtual device never executes them.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

from trayline.virtual.scan import SOFTDEVICE_MAGIC

__all__ = ["Dep", "ModuleSpec", "build_module", "softdevice_body"]

Dep = tuple[int, int, int]
NO_DEP: Dep = (0, 0, 0)


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """What a module's prefix says, plus how big its body is and what it carries."""

    platform: int
    function: int
    index: int
    version: int
    start: int
    body: int = 4096
    dep: Dep = NO_DEP
    dep2: Dep = NO_DEP
    flags: int = 0
    prefix_offset: int = 0
    product: tuple[int, int] = (0xFFFF, 0xFFFF)
    seed: int = 0
    payload: bytes = b""
    """Bytes placed at the start of the body (a banner string, a SoftDevice info struct)."""


def _filler(length: int, seed: int) -> bytes:
    """Deterministic, not trivially compressible bytes (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:length])


def build_module(spec: ModuleSpec) -> bytes:
    """The module file: vector table (if any), prefix, body, suffix, SHA-256 and CRC-32."""
    vector = _filler(spec.prefix_offset, spec.seed + 1)
    body = bytearray(_filler(spec.body, spec.seed * 7919 + spec.version))
    body[: len(spec.payload)] = spec.payload
    total = spec.prefix_offset + 24 + spec.body + 40 + 4
    end = spec.start + total - 4
    prefix = struct.pack(
        "<IIBBHHBBBBHBBH",
        spec.start,
        end,
        0,
        spec.flags,
        spec.version,
        spec.platform,
        spec.function,
        spec.index,
        *spec.dep,
        *spec.dep2,
    )
    head = vector + prefix + bytes(body) + struct.pack("<HHH", *spec.product, 0)
    sha = hashlib.sha256(head).digest()
    without_crc = head + sha + struct.pack("<H", 40)
    return without_crc + zlib.crc32(without_crc).to_bytes(4, "big")


def softdevice_body(start: int, size: int, firmware_id: int) -> bytes:
    """The first bytes of a SoftDevice image up to its info structure at ``start + 0x2000``.

    Layout as in Nordic's S140 (and the real module in the test fixtures):
    0x2000 info size, 0x2004 magic 0x51B1E5DB, 0x2008 end address, 0x200C
    firmware ID — which Device OS reports as the radio-stack module version.
    """
    head = bytearray(b"\xff" * 0x2000)
    head += struct.pack("<IIIH", 0xFFFFFF2C, SOFTDEVICE_MAGIC, start + size, firmware_id)
    return bytes(head)

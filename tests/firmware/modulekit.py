"""Build real-format module binaries for tests: prefix, body, suffix, SHA-256 and CRC-32.

The fixtures are real Particle binaries but they do not form one consistent
line (no Boron set of one release, no Tracker user part built against the
fixture system part). Tests that need such a set build it here, with the same
layout and checksums Device OS's build writes (spec §1.1, §1.5), so the parser
under test reads them exactly like a real module.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

from trayline.virtual.modulebuild import softdevice_body

Dep = tuple[int, int, int]
NO_DEP: Dep = (0, 0, 0)


def build_module(
    *,
    platform: int,
    function: int,
    index: int,
    version: int,
    start: int,
    body: int = 4096,
    dep: Dep = NO_DEP,
    dep2: Dep = NO_DEP,
    flags: int = 0,
    prefix_offset: int = 0,
    product: tuple[int, int] = (0xFFFF, 0xFFFF),
    seed: int = 0,
    body_head: bytes = b"",
) -> bytes:
    """A module of ``prefix_offset + 24 + body + 44`` bytes with valid SHA and CRC.

    ``body_head`` replaces the first bytes of the body (a SoftDevice's info
    structure, a test firmware's banner).
    """
    vector = bytes((seed + i) & 0xFF for i in range(prefix_offset))
    filler = bytes(((i * 31 + seed * 7 + version) & 0xFF) for i in range(body))
    filler = body_head + filler[len(body_head) :]
    total = prefix_offset + 24 + body + 40 + 4
    end = start + total - 4
    prefix = struct.pack(
        "<IIBBHHBBBBHBBH",
        start,
        end,
        0,
        flags,
        version,
        platform,
        function,
        index,
        *dep,
        *dep2,
    )
    head = vector + prefix + filler + struct.pack("<HHH", product[0], product[1], 0)
    sha = hashlib.sha256(head).digest()
    without_crc = head + sha + struct.pack("<H", 40)
    return without_crc + zlib.crc32(without_crc).to_bytes(4, "big")


def boron_set(release_system: int = 4005, bootloader: int = 1101) -> dict[str, bytes]:
    """A consistent Boron (13) line: bootloader, SoftDevice, system part 1, user part @0xB4000."""
    return {
        "bootloader.bin": build_module(
            platform=13,
            function=2,
            index=0,
            version=bootloader,
            start=0xF4000,
            prefix_offset=0x200,
            body=8192,
        ),
        "softdevice.bin": build_module(
            platform=13,
            function=8,
            index=0,
            version=202,
            start=0x1000,
            flags=0x01,
            dep=(2, 0, 501),
            dep2=(4, 1, 1321),
            body=16384,
            # Nordic's info structure at 0x3000 (magic, end, firmware ID = module version),
            # which Device OS and SWD scans read to know the SoftDevice (device-side.md §2.1).
            body_head=softdevice_body(0x1000, 16384 + 44, 202),
        ),
        "system-part1.bin": build_module(
            platform=13,
            function=4,
            index=1,
            version=release_system,
            start=0x30000,
            prefix_offset=0x200,
            dep=(2, 0, bootloader),
            dep2=(8, 0, 202),
            body=65536,
        ),
        # Built for 3.1.0+: 256 KB image, index 2 at 0xB4000; older: index 1 at 0xD4000.
        "user.bin": build_module(
            platform=13,
            function=5,
            index=2 if release_system >= 3100 else 1,
            version=6,
            start=0xB4000 if release_system >= 3100 else 0xD4000,
            dep=(4, 1, release_system),
            product=(13, 3),
            body=4096,
        ),
    }


def write_all(folder: Path, modules: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in modules.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths

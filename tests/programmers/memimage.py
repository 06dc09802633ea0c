"""A device's internal flash as bytes, for tests: erased to 0xFF, modules placed at their address.

Backends and the scanner read memory through ``read_memory(address, length)``;
:class:`FlashImage` answers those reads the way a probe reading a real chip
does, including refusing reads outside the flash.
"""

from __future__ import annotations

from pathlib import Path

from trayline.core.modules import parse_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"


class FlashImage:
    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.data = bytearray(b"\xff" * size)
        self.reads: list[tuple[int, int]] = []

    def place(self, module: bytes) -> None:
        parsed = parse_module(module)
        image = parsed.flash_image(module)
        self.write(parsed.start_address, image)

    def write(self, address: int, data: bytes) -> None:
        offset = address - self.base
        assert offset >= 0 and offset + len(data) <= len(self.data)
        self.data[offset : offset + len(data)] = data

    def read(self, address: int, length: int) -> bytes:
        self.reads.append((address, length))
        offset = address - self.base
        if offset < 0 or offset + length > len(self.data):
            raise ValueError(f"read outside flash: {address:#x}+{length}")
        return bytes(self.data[offset : offset + length])


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def gen3_image() -> FlashImage:
    return FlashImage(0, 0x100000)


def electron_image() -> FlashImage:
    return FlashImage(0x08000000, 0x100000)

"""The protobuf wire format, the small part Particle's control messages use.

Control-request payloads are proto3 messages (device-os-protobuf
``control/*.proto``). The messages a line needs have a handful of scalar
fields each, so trayline encodes and decodes them by hand here — varints,
length-delimited strings/bytes/sub-messages and ``fixed32`` — instead of
shipping generated ``_pb2`` modules that would need a build step and defeat
``mypy --strict``. The tests check every message against Google's
``protobuf`` runtime built from the same field numbers, so a mistake here
cannot hide.

proto3 rules kept: default values (0, False, "", b"") are not written; fields
are read in any order; unknown fields are skipped; for a repeated field every
occurrence is kept, for a scalar the last one wins.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = ["Fields", "WireError", "Writer", "decode_varint", "encode_varint", "parse_fields"]

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a valid protobuf message (truncated, bad wire type)."""


def encode_varint(value: int) -> bytes:
    """Base-128 varint; negative numbers as 64-bit two's complement (10 bytes), as int32 does."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """``(value, next position)``; :class:`WireError` if the varint runs off the end."""
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


@dataclass(slots=True)
class Writer:
    """Accumulates fields of one message in field order."""

    _out: bytearray = field(default_factory=bytearray)

    def _key(self, number: int, wire_type: int) -> None:
        self._out += encode_varint((number << 3) | wire_type)

    def uint(self, number: int, value: int) -> Writer:
        if value:
            self._key(number, VARINT)
            self._out += encode_varint(value)
        return self

    def boolean(self, number: int, value: bool) -> Writer:
        return self.uint(number, 1 if value else 0)

    def fixed32(self, number: int, value: int) -> Writer:
        if value:
            self._key(number, FIXED32)
            self._out += struct.pack("<I", value & 0xFFFFFFFF)
        return self

    def raw(self, number: int, value: bytes, *, always: bool = False) -> Writer:
        """A length-delimited field (bytes or an encoded sub-message)."""
        if value or always:
            self._key(number, LENGTH)
            self._out += encode_varint(len(value)) + value
        return self

    def text(self, number: int, value: str) -> Writer:
        return self.raw(number, value.encode("utf-8"))

    def bytes(self) -> bytes:
        return bytes(self._out)


Value = int | bytes


def parse_fields(data: bytes) -> list[tuple[int, int, Value]]:
    """Every ``(field number, wire type, value)`` in order; fixed64 is read as an int."""
    pos = 0
    found: list[tuple[int, int, Value]] = []
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            value, pos = decode_varint(data, pos)
            found.append((number, wire_type, value))
        elif wire_type == LENGTH:
            size, pos = decode_varint(data, pos)
            if pos + size > len(data):
                raise WireError(f"field {number}: length {size} runs past the end")
            found.append((number, wire_type, data[pos : pos + size]))
            pos += size
        elif wire_type in (FIXED32, FIXED64):
            width = 4 if wire_type == FIXED32 else 8
            if pos + width > len(data):
                raise WireError(f"field {number}: truncated fixed{width * 8}")
            found.append((number, wire_type, int.from_bytes(data[pos : pos + width], "little")))
            pos += width
        else:
            raise WireError(f"field {number}: unsupported wire type {wire_type}")
    return found


class Fields:
    """A parsed message: typed getters that apply proto3 defaults."""

    __slots__ = ("_fields",)

    def __init__(self, data: bytes) -> None:
        self._fields = parse_fields(data)

    def _last(self, number: int, wire_types: tuple[int, ...]) -> Value | None:
        value: Value | None = None
        for num, wire_type, val in self._fields:
            if num != number:
                continue
            if wire_type not in wire_types:
                raise WireError(f"field {number}: wire type {wire_type} not expected")
            value = val
        return value

    def uint(self, number: int) -> int:
        value = self._last(number, (VARINT, FIXED32, FIXED64))
        return value if isinstance(value, int) else 0

    def sint32(self, number: int) -> int:
        """An ``int32``/enum field (negative values arrive as 64-bit two's complement)."""
        value = self.uint(number) & 0xFFFFFFFF
        return value - (1 << 32) if value & 0x80000000 else value

    def boolean(self, number: int) -> bool:
        return bool(self.uint(number))

    def raw(self, number: int) -> bytes:
        value = self._last(number, (LENGTH,))
        return value if isinstance(value, bytes) else b""

    def has(self, number: int) -> bool:
        return any(num == number for num, _, _ in self._fields)

    def text(self, number: int) -> str:
        try:
            return self.raw(number).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"field {number}: not UTF-8") from exc

    def repeated(self, number: int) -> list[bytes]:
        return [v for num, wt, v in self._fields if num == number and isinstance(v, bytes)]

"""Intel HEX text for one block of bytes at one address: what nrfjprog and a DAPLink drive take.

nrfjprog ``--program`` and the DAPLink mass-storage drive accept Intel HEX, not
raw binaries, so a module handed to those backends is wrapped here: 16-byte
data records (type 00), an Extended Linear Address record (type 04) at every
64 KiB boundary, the EOF record (type 01); checksum = two's complement of the
record's byte sum. Several blocks can go into one file (the drag-and-drop
backend writes a whole bundle at once).

A copy of the same record rules lives in ``trayline.firmware.hexfile`` (the
service that lays out whole-device images); the programmers layer may not
import a service, so the few lines are repeated here. If the encoder moves to
``trayline.core`` both should use it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["encode_hex_blocks", "encode_hex_records"]

_RECORD = 16


def _record(kind: int, address: int, payload: bytes) -> str:
    body = bytes([len(payload), (address >> 8) & 0xFF, address & 0xFF, kind]) + payload
    checksum = (-sum(body)) & 0xFF
    return f":{body.hex().upper()}{checksum:02X}\n"


def _block(address: int, data: bytes) -> list[str]:
    lines: list[str] = []
    upper: int | None = None
    for offset in range(0, len(data), _RECORD):
        at = address + offset
        if at >> 16 != upper:
            upper = at >> 16
            lines.append(_record(0x04, 0, upper.to_bytes(2, "big")))
        chunk = data[offset : offset + _RECORD]
        room = 0x10000 - (at & 0xFFFF)
        if len(chunk) > room:  # never let one record cross a 64 KiB boundary
            lines.append(_record(0x00, at & 0xFFFF, chunk[:room]))
            lines.extend(_block(at + room, chunk[room:]))
            upper = (at + room) >> 16
            continue
        lines.append(_record(0x00, at & 0xFFFF, chunk))
    return lines


def encode_hex_blocks(blocks: Iterable[tuple[int, bytes]]) -> str:
    """One HEX file holding every ``(address, data)`` block, in the order given."""
    lines: list[str] = []
    for address, data in blocks:
        if address < 0 or address + len(data) > 0x1_0000_0000:
            raise ValueError(f"block at {address:#x} does not fit 32-bit addresses")
        lines.extend(_block(address, data))
    lines.append(":00000001FF\n")
    return "".join(lines)


def encode_hex_records(address: int, data: bytes) -> str:
    """One block as a complete HEX file."""
    return encode_hex_blocks([(address, data)])

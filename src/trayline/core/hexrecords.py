"""Intel HEX text for blocks of bytes at addresses: the one encoder trayline writes HEX with.

Three places hand bytes over as Intel HEX: nrfjprog ``--program`` (it takes
HEX only), the DAPLink drag-and-drop drive, and the whole-device image a
contract manufacturer's programmer loads (:mod:`trayline.firmware.hexfile`).
They all follow the same record rules, kept here once, pure and without I/O:

* every block opens with an Extended Linear Address record (type 04) naming
  its upper 16 address bits, and another follows at every 64 KiB crossing —
  so a block's own records never depend on the block before it (the Hex
  Generator cuts a user part out of a file at its ELA record);
* data records (type 00) carry up to 16 bytes and never cross a 64 KiB
  boundary (a record cut at the boundary continues in the next segment);
* one End Of File record (type 01) closes the file;
* each record's checksum is the two's complement of the sum of its bytes.

Blocks are written in the order given, not sorted: the caller decides the
order (the firmware image puts the UICR first and the user part last).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["EOF_RECORD", "encode_hex_blocks", "encode_hex_records", "hex_record"]

EOF_RECORD = ":00000001FF\n"
_DATA = 0x00
_EXTENDED_LINEAR_ADDRESS = 0x04
_RECORD_BYTES = 16
_SEGMENT = 0x1_0000
_ADDRESS_LIMIT = 0x1_0000_0000


def hex_record(kind: int, address: int, payload: bytes) -> str:
    """One record line: ``:`` length, 16-bit address, type, payload, checksum, newline."""
    body = bytes((len(payload), (address >> 8) & 0xFF, address & 0xFF, kind)) + payload
    checksum = (-sum(body)) & 0xFF
    return f":{body.hex().upper()}{checksum:02X}\n"


def _block_records(address: int, data: bytes) -> list[str]:
    lines: list[str] = []
    upper = -1
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        at = address + pos
        if at >> 16 != upper:
            upper = at >> 16
            lines.append(hex_record(_EXTENDED_LINEAR_ADDRESS, 0, upper.to_bytes(2, "big")))
        low = at & 0xFFFF
        size = min(_RECORD_BYTES, len(data) - pos, _SEGMENT - low)
        lines.append(hex_record(_DATA, low, bytes(view[pos : pos + size])))
        pos += size
    return lines


def encode_hex_blocks(blocks: Iterable[tuple[int, bytes]]) -> str:
    """One HEX file holding every ``(address, data)`` block, in the order given.

    A block that does not fit 32-bit addresses is a ``ValueError`` (nothing is
    returned half-encoded).
    """
    lines: list[str] = []
    for address, data in blocks:
        if address < 0 or address + len(data) > _ADDRESS_LIMIT:
            raise ValueError(f"block at {address:#x} does not fit 32-bit addresses")
        lines.extend(_block_records(address, bytes(data)))
    lines.append(EOF_RECORD)
    return "".join(lines)


def encode_hex_records(address: int, data: bytes) -> str:
    """One block as a complete HEX file."""
    return encode_hex_blocks([(address, data)])

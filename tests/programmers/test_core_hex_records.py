"""trayline.core.hexrecords: the one Intel HEX encoder (nrfjprog, DAPLink drive, firmware images).

Decoded with ``intelhex`` (an independent decoder) so the tests check the
bytes a programmer would write, plus the record rules the Hex Generator and
the DAPLink firmware rely on (an ELA record opening every block, no data
record crossing a 64 KiB boundary, one EOF record at the end).
"""

from __future__ import annotations

import io
import random

import pytest
from intelhex import IntelHex

from trayline.core.hexrecords import EOF_RECORD, encode_hex_blocks, encode_hex_records, hex_record


def _decoded(text: str) -> dict[int, int]:
    found: dict[int, int] = IntelHex(io.StringIO(text)).todict()
    return found


def _records(text: str) -> list[tuple[int, int, int, bytes]]:
    """``(kind, address, length, payload)`` per record line, each line's checksum checked."""
    out: list[tuple[int, int, int, bytes]] = []
    for line in text.splitlines():
        raw = bytes.fromhex(line[1:])
        assert sum(raw) & 0xFF == 0, line
        out.append((raw[3], int.from_bytes(raw[1:3], "big"), raw[0], raw[4:-1]))
    return out


def test_known_records() -> None:
    assert hex_record(0x01, 0, b"") == EOF_RECORD == ":00000001FF\n"
    assert hex_record(0x04, 0, b"\x00\x0d") == ":02000004000DED\n"
    assert hex_record(0x00, 0x4000, bytes(range(4))) == ":0440000000010203B6\n"


def test_a_module_round_trips_with_an_ela_record_first() -> None:
    data = random.Random(7).randbytes(3316)
    text = encode_hex_records(0xD4000, data)
    records = _records(text)
    assert records[0] == (0x04, 0, 2, b"\x00\x0d")
    assert records[-1] == (0x01, 0, 0, b"")
    assert all(length <= 16 for kind, _, length, _ in records if kind == 0x00)
    assert _decoded(text) == {0xD4000 + i: b for i, b in enumerate(data)}


def test_no_data_record_crosses_a_64k_boundary() -> None:
    data = bytes(range(256)) * 2
    address = 0x2FFF8  # unaligned: the record cut at 0x30000 continues after a new ELA record
    records = _records(encode_hex_records(address, data))
    upper = 0
    for kind, low, length, payload in records:
        if kind == 0x04:
            upper = int.from_bytes(payload, "big")
        elif kind == 0x00:
            start = (upper << 16) + low
            assert start >> 16 == (start + length - 1) >> 16
    assert [p for k, _, _, p in records if k == 0x04] == [b"\x00\x02", b"\x00\x03"]
    assert _decoded(encode_hex_records(address, data)) == {
        address + i: b for i, b in enumerate(data)
    }


def test_blocks_keep_the_order_given_each_opened_by_its_own_ela() -> None:
    text = encode_hex_blocks([(0x10001000, b"\x01" * 8), (0x000B4000, b"\x02" * 20)])
    elas = [p for k, _, _, p in _records(text) if k == 0x04]
    assert elas == [b"\x10\x00", b"\x00\x0b"]
    decoded = _decoded(text)
    assert decoded[0x10001000] == 1 and decoded[0x000B4013] == 2 and len(decoded) == 28


def test_empty_input_is_just_the_eof_record() -> None:
    assert encode_hex_blocks([]) == EOF_RECORD
    assert encode_hex_records(0x1000, b"") == EOF_RECORD


@pytest.mark.parametrize(("address", "size"), [(-1, 4), (0xFFFF_FFF0, 32)])
def test_blocks_outside_32_bit_addresses_are_refused(address: int, size: int) -> None:
    with pytest.raises(ValueError, match="does not fit 32-bit addresses"):
        encode_hex_blocks([(address, b"\x00" * size)])

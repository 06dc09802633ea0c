"""A corpus of malformed input files, shared by the reader's tests and the CLI's.

Every case is a file an operator could plausibly hand to ``trayline provision
--input`` (or, for ``expect=Expect.ICCIDS``, to ``trayline sims activate
--input``) that must be refused before any request is sent:

* :func:`trayline.inputs.read_inputs` returns a result with at
  least one problem on :attr:`MalformedInput.line` whose message contains
  :attr:`MalformedInput.reason`, or, for cases where
  :attr:`MalformedInput.file_error` is true (missing file, directory, pipe,
  too big), raises ``InputFileError`` whose message starts with ``<path>:``;
* the CLI exits with code 2, prints ``<path>:<line>:`` and sends nothing.

Use it from any test module in ``tests/provisioning/``::

    from malformed_inputs import MALFORMED_INPUTS, MalformedInput

    @pytest.mark.parametrize("case", MALFORMED_INPUTS, ids=lambda case: case.id)
    def test_something(case: MalformedInput, tmp_path: Path) -> None:
        path = case.create(tmp_path)

This plain import works because ``tests/`` has no ``__init__.py``: pytest's
default ("prepend") import mode puts the directory of each test module on
``sys.path`` before importing it, so modules next to a test are importable by
their bare name. Keep the basename unique across ``tests/``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trayline.inputs import MAX_FILE_BYTES, Expect

DEVICE = "0123456789abcdef01234567"
SERIAL = "P028AB1234567XY"
ICCID = "8934076500002589174"
SECRET = "K7Q2ZX9PLM4TR8W"

Special = Literal["file", "missing", "directory", "fifo", "too_big"]


@dataclass(frozen=True)
class MalformedInput:
    """One malformed input file and what the reader must say about it."""

    id: str
    reason: str
    """A word or phrase the problem's message must contain (case-insensitive)."""
    content: bytes = b""
    line: int = 1
    """The line the problem must be reported on (ignored when ``file_error``)."""
    expect: Expect = Expect.DEVICES
    secret: str | None = None
    """Text that must appear in no message (a sticker's mobile secret)."""
    special: Special = "file"
    suffix: str = ".txt"

    @property
    def file_error(self) -> bool:
        """True when reading raises ``InputFileError`` instead of returning problems."""
        return self.special != "file"

    def create(self, directory: Path) -> Path:
        """Make the case's file (or directory, pipe, …) in ``directory``; return its path."""
        path = directory / f"{self.id}{self.suffix}"
        if self.special == "missing":
            return path
        if self.special == "directory":
            path.mkdir()
        elif self.special == "fifo":
            os.mkfifo(path)
        elif self.special == "too_big":
            with path.open("wb") as file:  # sparse: no disk space, no time
                file.truncate(MAX_FILE_BYTES + 1)
        else:
            path.write_bytes(self.content)
        return path


def _lines(*lines: str, end: str = "\n") -> bytes:
    return "".join(line + end for line in lines).encode()


def _random_junk(seed: int, size: int) -> bytes:
    """Seeded random bytes that start with an undecodable byte (0xFF never occurs in UTF-8)."""
    rng = random.Random(seed)
    return b"\xff" + bytes(rng.randrange(256) for _ in range(size))


def _cases() -> tuple[MalformedInput, ...]:
    csv_header = "device_id,serial_number"
    return (
        # ---------------------------------------------------------------- encoding
        MalformedInput("latin1_letter", "UTF-8", _lines(DEVICE) + b"Num\xe9ro\n", line=2),
        MalformedInput(
            "cp1252_smart_quotes", "UTF-8", b"\x93" + SERIAL.encode() + b"\x94\n", line=1
        ),
        MalformedInput(
            "latin1_in_csv_comment",
            "byte offset",
            _lines(csv_header, f"{DEVICE},{SERIAL}") + b"# r\xe9vis\xe9\n",
            line=3,
            suffix=".csv",
        ),
        MalformedInput("utf16le_without_bom", "NUL", (DEVICE + "\n").encode("utf-16-le")),
        MalformedInput("utf16be_without_bom", "NUL", (DEVICE + "\n").encode("utf-16-be")),
        MalformedInput("utf32_with_bom", "UTF-32", (DEVICE + "\n").encode("utf-32")),
        MalformedInput(
            "utf16_bom_lone_surrogate",
            "UTF-16",
            b"\xff\xfe" + (DEVICE + "\n").encode("utf-16-le") + b"\x00\xd8",
            line=2,
        ),
        MalformedInput("utf16_bom_odd_length", "UTF-16", b"\xff\xfe" + b"0\x001\x002"),
        MalformedInput("truncated_multibyte", "UTF-8", _lines(DEVICE) + b"\xe2\x82", line=2),
        MalformedInput("overlong_utf8", "UTF-8", b"\xc0\xaf" + SERIAL.encode()),
        MalformedInput("utf8_encoded_surrogate", "UTF-8", b"\xed\xa0\x80\n"),
        MalformedInput("double_bom", "non-ASCII", "\ufeff\ufeff".encode() + _lines(DEVICE)),
        MalformedInput(
            "zero_width_space",
            "U+200B",
            _lines(SERIAL, DEVICE[:12] + "\u200b" + DEVICE[12:]),
            line=2,
        ),
        MalformedInput(
            "csv_smart_quotes",
            "non-ASCII",
            _lines(csv_header, f"\u201c{DEVICE}\u201d,{SERIAL}"),
            line=2,
            suffix=".csv",
        ),
        # ---------------------------------------------------------------- binary junk
        MalformedInput("nul_in_middle", "NUL", _lines(DEVICE, SERIAL) + b"P028\x00\n", line=3),
        MalformedInput("random_bytes", "UTF-8", _random_junk(1, 4096)),
        MalformedInput("png_image", "UTF-8", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)),
        MalformedInput("gzip_archive", "UTF-8", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"),
        MalformedInput("xlsx_workbook", "xlsx", b"PK\x03\x04\x14\x00\x06\x00" + bytes(40)),
        MalformedInput(
            "bell_character", "not a device ID", _lines(DEVICE[:-1] + "\x07" + DEVICE[-1])
        ),
        MalformedInput("ansi_escapes", "not a", _lines(DEVICE, f"\x1b[31m{SERIAL}\x1b[0m"), line=2),
        # ---------------------------------------------------------------- huge lines
        MalformedInput("huge_line", "characters long", _lines(DEVICE, "a" * 100_000), line=2),
        MalformedInput("huge_single_line_no_newline", "characters long", b"0" * 2_000_000),
        MalformedInput(
            "huge_csv_cell",
            "characters long",
            _lines(csv_header, f"{DEVICE},{SERIAL}", f"{DEVICE},{'X' * 10_000}"),
            line=3,
            suffix=".csv",
        ),
        MalformedInput(
            "ids_joined_on_one_line",
            "characters long",
            _lines(csv_header, ",".join([DEVICE] * 500)),
            line=2,
            suffix=".csv",
        ),
        # ---------------------------------------------------------------- columns
        MalformedInput(
            "csv_unknown_columns", "no identifier column", _lines("name,location", "a,b")
        ),
        MalformedInput(
            "csv_without_header", "add a header row", _lines(f"{DEVICE},{SERIAL}"), suffix=".csv"
        ),
        MalformedInput(
            "csv_semicolon_unknown_columns", "no identifier column", _lines("Name;Tray", "x;1")
        ),
        MalformedInput(
            "csv_duplicate_column", "twice", _lines("device_id,Device ID", f"{DEVICE},{DEVICE}")
        ),
        MalformedInput(
            "csv_ragged_extra_value",
            "3 values",
            _lines(csv_header, f"{DEVICE},{SERIAL}", f"{DEVICE[:-1]}8,{SERIAL[:-1]}Z,extra"),
            line=3,
        ),
        MalformedInput(
            "csv_ragged_missing_value",
            "1 value",
            _lines("device_id,serial_number,iccid", f"{DEVICE},{SERIAL},{ICCID}", DEVICE),
            line=3,
        ),
        MalformedInput(
            "csv_wrong_delimiter_in_row",
            "1 value but",
            _lines("Device ID;Serial Number", f"{DEVICE},{SERIAL}"),
            line=2,
        ),
        MalformedInput("csv_header_only", "no rows", _lines(csv_header)),
        MalformedInput(
            "csv_bad_device_id", "not a device ID", _lines(csv_header, f"xyz,{SERIAL}"), line=2
        ),
        MalformedInput(
            "csv_tab_bad_iccid",
            "not an ICCID",
            _lines("iccid\tdevice_id", f"12345\t{DEVICE}"),
            line=2,
        ),
        MalformedInput(
            "csv_serial_in_device_column", "not a device ID", _lines("device_id", SERIAL), line=2
        ),
        MalformedInput(
            "csv_sticker_in_device_column",
            "more than one word",
            _lines("device_id,note", f"{SERIAL} {SECRET},tray 4"),
            line=2,
            secret=SECRET,
        ),
        MalformedInput(
            "csv_identifier_cells_empty",
            "no identifier",
            _lines("device_id,serial_number,note", f"{DEVICE},,a", ",,forgot"),
            line=3,
        ),
        MalformedInput(
            "csv_conflicting_rows",
            "also on line 2",
            _lines(csv_header, f"{DEVICE},{SERIAL}", f"{DEVICE},P028AB1234567XQ"),
            line=3,
        ),
        # ---------------------------------------------------------------- quoting
        MalformedInput(
            "unclosed_quote",
            "quotes",
            _lines(csv_header, f'"{DEVICE},{SERIAL}', f"{DEVICE[:-1]}9,{SERIAL[:-1]}Q"),
            line=2,
        ),
        MalformedInput(
            "text_after_closing_quote",
            "quotes",
            _lines(csv_header, f'"{DEVICE}"x,{SERIAL}'),
            line=2,
        ),
        MalformedInput(
            "value_spans_lines",
            "span lines",
            _lines("device_id,note", f'{DEVICE},"first', 'second"'),
            line=2,
        ),
        MalformedInput("unbalanced_quote_in_header", "quotes", _lines('"device_id,serial', DEVICE)),
        # ---------------------------------------------------------------- list lines
        MalformedInput("empty_file", "empty", b""),
        MalformedInput("bom_only", "empty", b"\xef\xbb\xbf"),
        MalformedInput("blank_lines_only", "empty", b"  \n\t\n\r\n\n"),
        MalformedInput("comments_only", "no identifiers", _lines("# tray 4", "# nothing yet")),
        MalformedInput("short_device_id", "not", _lines(DEVICE[:-1])),
        MalformedInput("non_hex_device_id", "not a device ID", _lines(DEVICE[:-1] + "g")),
        MalformedInput("short_iccid", "not an ICCID", _lines(DEVICE, "89123456789"), line=2),
        MalformedInput("mistyped_imei", "IMEI", _lines("123456789012345")),
        MalformedInput(
            "device_id_with_trailing_text", "more text", _lines(f"{DEVICE} tray-4 slot-2")
        ),
        MalformedInput(
            "sticker_with_two_words_after_serial",
            "not a mobile secret",
            _lines(f"{SERIAL} {SECRET} {SECRET}"),
            secret=SECRET,
        ),
        MalformedInput(
            "sticker_with_bad_serial",
            "more text follows",
            _lines(f"P028AB12 {SECRET}"),
            secret=SECRET,
        ),
        MalformedInput(
            "comma_joined_ids_in_list", "not", _lines(DEVICE, f"{DEVICE},{SERIAL}"), line=2
        ),
        MalformedInput("crlf_with_bad_line", "not", _lines(DEVICE, "hello", end="\r\n"), line=2),
        MalformedInput("lone_cr_with_bad_line", "not", _lines(SERIAL, "bad", end="\r"), line=2),
        # ---------------------------------------------------------------- ICCID files
        MalformedInput(
            "iccids_given_a_device_id",
            "is a device ID, not an ICCID",
            _lines(ICCID, DEVICE),
            line=2,
            expect=Expect.ICCIDS,
        ),
        MalformedInput(
            "iccids_csv_without_iccid_column",
            "no ICCID column",
            _lines(csv_header, f"{DEVICE},{SERIAL}"),
            expect=Expect.ICCIDS,
        ),
        MalformedInput(
            "iccids_csv_empty_iccid",
            "no identifier",
            _lines("serial,ICCID", f"{SERIAL},"),
            line=2,
            expect=Expect.ICCIDS,
        ),
        # ---------------------------------------------------------------- not a readable file
        MalformedInput("missing_file", "no such file", special="missing"),
        MalformedInput("directory", "directory", special="directory"),
        MalformedInput("named_pipe", "not a regular file", special="fifo"),
        MalformedInput("too_big", "too big", special="too_big"),
    )


MALFORMED_INPUTS: tuple[MalformedInput, ...] = _cases()
"""Every malformed case; ids are unique and usable as pytest ids."""

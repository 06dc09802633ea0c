"""Reading the device lists a provisioning job starts from.

A provisioning job (``trayline provision --input FILE``) and a SIM activation
(``trayline sims activate --input FILE``) both start from a file an operator
made: a list pasted from the Console's "Add Many Devices" box, a scanner's dump
of sticker codes, or a tray list exported from a spreadsheet. This module turns
that file into validated identifiers (:mod:`trayline.core.ids`) *before a single
request is sent*, and says precisely what is wrong with every line it cannot use.

Two formats are accepted, told apart by the first line that is not blank or a
comment:

* **list**: one identifier per line, as "Add Many Devices" takes: device ID,
  serial number, ICCID or IMEI (each line classified by
  :func:`~trayline.core.ids.parse_identifier`), or the text of a sticker scan,
  ``SERIAL MOBILESECRET``, whose secret is dropped on the spot.
* **csv**: a header row naming at least one identifier column
  (``device_id``/``Device ID``/``deviceID``/``id``, ``serial_number``/``Serial
  Number``/``serial``, ``iccid``, ``imei``; case, spaces, ``_`` and ``-`` do
  not matter), then one row per device. ``,``, ``;`` and tab delimiters are
  recognised; other columns are ignored. A row may carry a device ID, a serial
  and an ICCID at once: all are kept, because knowing the serial of a device ID
  saves the provisioning engine a lookup later.

What a row must identify is the caller's choice (:class:`Expect`): a device
(anything the cloud's import takes) or, for SIM activation, an ICCID.

Design rules:

* **Pure.** :func:`parse_inputs` takes bytes and returns an :class:`InputResult`;
  :func:`read_inputs` only adds reading one file. Nothing here talks to the
  network, prints or exits.
* **Everything is reported, nothing is decided.** The result holds the accepted
  rows, every problem (``path:line: reason``) and every duplicate. Whether a
  bad row stops the run (the default) or is skipped (``--skip-invalid``) is the
  caller's policy, applied with :meth:`InputResult.raise_if_invalid`.
* **One error type for the caller to catch.** Problems with the file as a whole
  that prevent reading it (missing, a directory, unreadable, too big) raise
  :class:`InputFileError`; :meth:`InputResult.raise_if_invalid` raises
  :class:`InputRejected`. Both are :class:`InputError`. Nothing else escapes,
  whatever the bytes: a CLI turns ``InputError`` into exit code 2.
* **Secrets stay out.** A sticker's mobile secret is never stored, and no
  message repeats text that may contain one.
"""

from __future__ import annotations

import codecs
import csv
import enum
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from trayline.core.ids import (
    DeviceId,
    Iccid,
    Imei,
    InvalidIdentifier,
    SerialNumber,
    parse_identifier,
    parse_sticker,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "Duplicate",
    "Expect",
    "Identifier",
    "InputDevice",
    "InputError",
    "InputFileError",
    "InputProblem",
    "InputRejected",
    "InputResult",
    "parse_inputs",
    "read_inputs",
]

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Larger files are refused unread: a tray list of 100,000 devices is under 5 MB."""

MAX_LINE_CHARS = 4096
"""A longer line is not a row of identifiers (a tray-list row is under 200 characters)."""

_MAX_LISTED = 20
"""How many problems :class:`InputRejected` lists before summarising the rest."""

Identifier = DeviceId | SerialNumber | Iccid | Imei
InputFormat = Literal["list", "csv"]


class Expect(enum.Enum):
    """What each row of an input file must identify."""

    DEVICES = "devices"
    """A device, by anything the cloud's import takes: device ID, serial, ICCID or IMEI."""

    ICCIDS = "ICCIDs"
    """A SIM, by its ICCID (``trayline sims activate``)."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class InputDevice:
    """One accepted row: the identifier to use, plus whatever else the row told us.

    ``identifier`` is what the provisioning engine sends to the cloud's import
    (for :attr:`Expect.ICCIDS`, the ICCID to activate). In a tray-list CSV it
    is the device ID when the row has one, else the serial, the IMEI, then the
    ICCID; the other fields keep the rest of the row. No mobile secret is held.
    """

    line: int
    identifier: Identifier
    device_id: DeviceId | None = None
    serial: SerialNumber | None = None
    iccid: Iccid | None = None
    imei: Imei | None = None

    @property
    def kind(self) -> str:
        """What the identifier is: "device ID", "serial number", "ICCID" or "IMEI"."""
        return self.identifier.kind


@dataclass(frozen=True, slots=True)
class InputProblem:
    """Why a line of an input file cannot be used.

    ``whole_file`` problems (wrong encoding, binary data, a CSV header without
    an identifier column, no identifiers at all) make the whole file unusable:
    ``--skip-invalid`` cannot skip them. The others concern one row.
    """

    path: str
    line: int
    message: str
    whole_file: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row that repeats an earlier one; it was dropped, the earlier row kept."""

    path: str
    line: int
    first_line: int
    kind: str
    value: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: duplicate {self.kind} {self.value} "
            f"(first on line {self.first_line}); ignored"
        )


class InputError(Exception):
    """An input file cannot be used. The only exception this module raises."""


class InputFileError(InputError):
    """The file cannot be read at all: missing, a directory, unreadable or too big."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class InputRejected(InputError):
    """The file was read, but the caller's policy does not let the run go on."""

    def __init__(self, path: str, problems: tuple[InputProblem, ...], summary: str) -> None:
        lines = [str(p) for p in problems[:_MAX_LISTED]]
        if len(problems) > _MAX_LISTED:
            lines.append(f"… and {len(problems) - _MAX_LISTED} more problems")
        lines.append(summary)
        super().__init__("\n".join(lines))
        self.path = path
        self.problems = problems


@dataclass(frozen=True, slots=True)
class InputResult:
    """Everything read from one input file, good and bad, in file order."""

    path: str
    format: InputFormat
    expect: Expect
    devices: tuple[InputDevice, ...]
    problems: tuple[InputProblem, ...]
    duplicates: tuple[Duplicate, ...]

    @property
    def ok(self) -> bool:
        """True when every line was usable (duplicates do not count against it)."""
        return not self.problems

    @property
    def whole_file_problems(self) -> tuple[InputProblem, ...]:
        return tuple(p for p in self.problems if p.whole_file)

    def raise_if_invalid(self, *, skip_invalid: bool = False) -> None:
        """Apply the run policy: raise :class:`InputRejected` unless the run may go on.

        By default any problem stops the run. With ``skip_invalid`` (the CLI's
        ``--skip-invalid``) bad rows are left out, but a problem with the file
        as a whole, or a file with no usable row left, still stops it.
        """
        noun = "SIMs" if self.expect is Expect.ICCIDS else "devices"
        fatal = self.whole_file_problems
        if fatal:
            raise InputRejected(self.path, fatal, f"{self.path}: file not usable; nothing sent")
        if self.problems and not skip_invalid:
            raise InputRejected(
                self.path,
                self.problems,
                f"{self.path}: {len(self.problems)} invalid line(s); nothing sent "
                f"(fix them, or pass --skip-invalid to go on with the "
                f"{len(self.devices)} valid {noun})",
            )
        if not self.devices:
            raise InputRejected(
                self.path, self.problems, f"{self.path}: no valid {noun} left; nothing sent"
            )


# --------------------------------------------------------------------------- reading


def read_inputs(
    path: str | os.PathLike[str],
    *,
    expect: Expect = Expect.DEVICES,
    max_bytes: int = MAX_FILE_BYTES,
) -> InputResult:
    """Read an input file and parse it with :func:`parse_inputs`.

    Raises :class:`InputFileError` when the file cannot be read at all; every
    other problem is in the returned :attr:`InputResult.problems`.
    """
    name = os.fspath(path)
    try:
        info = Path(name).stat()
    except FileNotFoundError:
        raise InputFileError(name, "no such file") from None
    except PermissionError:
        raise InputFileError(name, "permission denied") from None
    except (OSError, ValueError) as err:
        raise InputFileError(name, f"cannot read: {_os_reason(err)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputFileError(name, "is a directory, not a file of identifiers")
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(name, "is not a regular file (a pipe or device?)")
    if info.st_size > max_bytes:
        raise InputFileError(name, _too_big(info.st_size, max_bytes))
    try:
        with Path(name).open("rb") as file:
            data = file.read(max_bytes + 1)
    except PermissionError:
        raise InputFileError(name, "permission denied") from None
    except OSError as err:
        raise InputFileError(name, f"cannot read: {_os_reason(err)}") from None
    if len(data) > max_bytes:  # grew since stat
        raise InputFileError(name, _too_big(len(data), max_bytes))
    return parse_inputs(data, path=name, expect=expect)


def _os_reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _too_big(size: int, limit: int) -> str:
    return (
        f"file is too big ({size:,} bytes, the limit is {limit:,}): "
        f"is this really a list of identifiers?"
    )


def parse_inputs(
    data: bytes, *, path: str = "<input>", expect: Expect = Expect.DEVICES
) -> InputResult:
    """Parse the bytes of an input file; ``path`` names it in messages.

    Never raises: every problem, including an undecodable file, is returned
    in :attr:`InputResult.problems`.
    """
    parser = _Parser(path, expect)
    text = parser.decode(data)
    if text is not None:
        parser.parse(text)
    return parser.result()


# --------------------------------------------------------------------------- internals

# Header cells are compared after lower-casing and dropping these characters.
_HEADER_NOISE = str.maketrans("", "", " _-.")
_COLUMNS: dict[str, str] = {
    "deviceid": "device_id",
    "id": "device_id",
    "serialnumber": "serial",
    "serial": "serial",
    "serialno": "serial",
    "iccid": "iccid",
    "imei": "imei",
}
_FIELD_KIND = {
    "device_id": DeviceId.kind,
    "serial": SerialNumber.kind,
    "iccid": Iccid.kind,
    "imei": Imei.kind,
}
# Which column becomes the identifier to send, best first.
_PRIORITY: dict[Expect, tuple[str, ...]] = {
    Expect.DEVICES: ("device_id", "serial", "imei", "iccid"),
    Expect.ICCIDS: ("iccid",),
}
_DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_INLINE_COMMENT = re.compile(r"\s#")


@dataclass(frozen=True, slots=True)
class _Header:
    line: int
    delimiter: str
    width: int
    columns: dict[str, int]  # field -> cell index
    names: dict[str, str]  # field -> header cell as written


class _RowError(Exception):
    """One row cannot be used; the message goes into an :class:`InputProblem`."""


def _line_of(text: bytes | str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset``, counting CRLF, LF and lone CR as breaks."""
    head = text[:offset]
    if isinstance(head, bytes):
        lf, cr, crlf = head.count(b"\n"), head.count(b"\r"), head.count(b"\r\n")
        start = max(head.rfind(b"\n"), head.rfind(b"\r")) + 1
    else:
        lf, cr, crlf = head.count("\n"), head.count("\r"), head.count("\r\n")
        start = max(head.rfind("\n"), head.rfind("\r")) + 1
    return lf + cr - crlf + 1, offset - start + 1


def _split_cells(line: str, delimiter: str) -> list[str]:
    """Split one line into stripped cells; raises ``csv.Error`` on bad quoting.

    Lines without a quote are split directly (fast path for big tray lists);
    quoted ones go through the ``csv`` module, strictly, one line at a time: a
    value may not span lines, so an unbalanced quote is caught on its own line
    instead of swallowing the rest of the file.
    """
    if '"' not in line:
        return [cell.strip() for cell in line.split(delimiter)]
    reader = csv.reader([line], delimiter=delimiter, strict=True, skipinitialspace=True)
    return [cell.strip() for cell in next(reader, [])]


def _non_ascii(value: str, what: str) -> str:
    for char in value:
        if not char.isascii():
            return (
                f"{what} contains the non-ASCII character U+{ord(char):04X} ({char!r}): "
                f"identifiers are plain letters and digits (typographic quotes, "
                f"non-breaking or zero-width spaces pasted from a document?)"
            )
    raise AssertionError("unreachable: called only for non-ASCII text")


def _parse_serial(value: str) -> SerialNumber:
    """A serial, or a sticker scan ``SERIAL SECRET`` whose secret is dropped here."""
    is_sticker = len(value.split(None, 1)) > 1
    serial = parse_sticker(value).serial if is_sticker else SerialNumber.parse(value)
    if serial.isdigit():
        # Every Particle serial prefix has a letter (core/skus.py), so 15 digits
        # are an IMEI whose check digit does not match: a misread or a typo.
        raise InvalidIdentifier(
            SerialNumber.kind,
            f"{serial} is 15 digits but not a valid IMEI (the check digit is wrong) "
            f"and not a serial number (serials start with a letter-bearing prefix "
            f"such as P028): a digit was probably mistyped or misread",
        )
    return serial


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return token[1:-1].strip()
    return token


class _Parser:
    """Accumulates rows, problems and duplicates while walking one file."""

    def __init__(self, path: str, expect: Expect) -> None:
        self.path = path
        self.expect = expect
        self.format: InputFormat = "list"
        self.devices: list[InputDevice] = []
        self.problems: list[InputProblem] = []
        self.duplicates: list[Duplicate] = []
        self._seen: dict[tuple[str, str], InputDevice] = {}

    def result(self) -> InputResult:
        return InputResult(
            path=self.path,
            format=self.format,
            expect=self.expect,
            devices=tuple(self.devices),
            problems=tuple(self.problems),
            duplicates=tuple(self.duplicates),
        )

    def problem(self, line: int, message: str, *, whole_file: bool = False) -> None:
        self.problems.append(InputProblem(self.path, line, message, whole_file))

    # ----------------------------------------------------------------- decoding

    def decode(self, data: bytes) -> str | None:
        """The file's text, or ``None`` after recording why it is not text.

        Accepted: UTF-8 with or without a byte-order mark, and UTF-16 *with* a
        byte-order mark (what Excel's "Unicode Text" export writes). Anything
        else (Latin-1, UTF-16 without BOM, UTF-32, binary) is refused with the
        line and byte offset of the first byte that gives it away, rather than
        guessed at: a wrong guess would turn a serial into a different serial.
        """
        if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            self.problem(1, "file is UTF-32 text: save it as UTF-8", whole_file=True)
            return None
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            try:
                text = data.decode("utf-16")
            except UnicodeDecodeError as err:
                shown = data[: err.start].decode("utf-16", errors="replace")
                line, _ = _line_of(shown, len(shown))
                self.problem(
                    line,
                    f"file starts with a UTF-16 byte-order mark but is not valid UTF-16 "
                    f"at byte offset {err.start} ({err.reason}): save it as UTF-8",
                    whole_file=True,
                )
                return None
            nul = text.find("\x00")
            if nul >= 0:
                line, column = _line_of(text, nul)
                self.problem(
                    line,
                    f"NUL character at column {column}: this is not a text file of identifiers",
                    whole_file=True,
                )
                return None
            return text
        if data.startswith(b"PK\x03\x04"):
            self.problem(
                1,
                "file is a ZIP archive (an Excel .xlsx workbook?), not text: "
                "export the sheet as CSV (UTF-8)",
                whole_file=True,
            )
            return None
        # Report whichever comes first: a NUL byte (binary, or UTF-16 without
        # BOM) or a byte sequence that is not UTF-8.
        nul = data.find(b"\x00")
        body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            offset = err.start + (len(data) - len(body))
            if nul < 0 or offset < nul:
                line, column = _line_of(data, offset)
                self.problem(
                    line,
                    f"not UTF-8: byte 0x{data[offset]:02X} at byte offset {offset} "
                    f"(column {column}) cannot be decoded; the file is not text, or was saved "
                    f"as Latin-1/Windows-1252: save it as UTF-8 (Excel: 'CSV UTF-8')",
                    whole_file=True,
                )
                return None
        if nul >= 0:
            line, column = _line_of(data, nul)
            self.problem(
                line,
                f"NUL byte at byte offset {nul} (column {column}): this is a binary file, "
                f"or text saved as UTF-16 without a byte-order mark; save it as UTF-8 text",
                whole_file=True,
            )
            return None
        return text

    # ----------------------------------------------------------------- parsing

    def parse(self, text: str) -> None:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        first = next(
            (
                n
                for n, raw in enumerate(lines)
                if len(raw) > MAX_LINE_CHARS or (raw.strip() and not raw.lstrip().startswith("#"))
            ),
            None,
        )
        if first is None:
            self.problem(
                1,
                "no identifiers: the file is empty or holds only blank lines and comments",
                whole_file=True,
            )
            return
        header = self.find_header(lines[first], first + 1)
        if header is False:
            return
        if header is None:
            self.parse_list(lines, first)
        else:
            self.format = "csv"
            self.parse_csv(lines, header)
        if not self.devices and not self.problems:
            where = header.line if header else 1
            self.problem(
                where,
                "no identifiers: the header is followed by no rows"
                if header
                else "no identifiers found",
                whole_file=True,
            )

    def find_header(self, raw: str, line: int) -> _Header | Literal[False] | None:
        """The CSV header on this line, ``None`` for a list, ``False`` after a problem."""
        if len(raw) > MAX_LINE_CHARS:
            return None  # reported as an over-long line by the list parser
        stripped = raw.strip()
        best: tuple[int, str, list[str]] | None = None
        quoting_error: str | None = None
        for delimiter in [d for d in _DELIMITERS if d in stripped] or [","]:
            try:
                # Only spaces are stripped: a leading or trailing tab is an empty cell.
                cells = _split_cells(raw.strip(" "), delimiter)
                while cells and not cells[-1]:
                    cells.pop()  # spreadsheets pad the header with empty cells
            except csv.Error as err:
                quoting_error = str(err)
                continue
            count = sum(c.lower().translate(_HEADER_NOISE) in _COLUMNS for c in cells)
            if count and (best is None or count > best[0]):
                best = (count, delimiter, cells)
        looks_tabular = "," in stripped or ";" in stripped
        if best is None:
            if quoting_error is not None and looks_tabular:
                self.problem(
                    line,
                    f"header row has unbalanced quotes ({quoting_error})",
                    whole_file=True,
                )
                return False
            if looks_tabular:
                self.problem(line, self.no_column_message(stripped), whole_file=True)
                return False
            return None
        _, delimiter, cells = best
        columns: dict[str, int] = {}
        names: dict[str, str] = {}
        for index, cell in enumerate(cells):
            field = _COLUMNS.get(cell.lower().translate(_HEADER_NOISE))
            if field is None:
                continue
            if field in columns:
                self.problem(
                    line,
                    f"header names the {_FIELD_KIND[field]} twice (columns "
                    f"{columns[field] + 1} {names[field]!r} and {index + 1} {cell!r}): "
                    f"keep one",
                    whole_file=True,
                )
                return False
            columns[field] = index
            names[field] = cell
        if not any(field in columns for field in _PRIORITY[self.expect]):
            self.problem(
                line,
                f"header has no ICCID column (found {', '.join(map(repr, names.values()))}); "
                f"expected a column named 'iccid'",
                whole_file=True,
            )
            return False
        return _Header(line, delimiter, len(cells), columns, names)

    def no_column_message(self, stripped: str) -> str:
        wanted = (
            "'iccid'"
            if self.expect is Expect.ICCIDS
            else "'device_id', 'serial_number', 'iccid' or 'imei'"
        )
        message = f"first row has delimiters but names no identifier column (expected {wanted})"
        first_cell = re.split(r"[,;\t]", stripped, maxsplit=1)[0].strip().strip('"')
        try:
            parse_identifier(first_cell)
        except InvalidIdentifier:
            return message
        return (
            f"{message}; it looks like data: add a header row such as "
            f"'device_id,serial_number,iccid', or put one identifier per line"
        )

    def parse_list(self, lines: list[str], start: int) -> None:
        for index in range(start, len(lines)):
            raw = lines[index]
            line = index + 1
            if len(raw) > MAX_LINE_CHARS:
                self.problem(line, _long_line(raw))
                continue
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            if "#" in text:
                match = _INLINE_COMMENT.search(text)
                if match:
                    text = text[: match.start()].rstrip()
            try:
                device = self.list_row(line, text)
            except _RowError as err:
                self.problem(line, str(err))
                continue
            except InvalidIdentifier as err:
                self.problem(line, str(err))
                continue
            self.accept(device)

    def list_row(self, line: int, text: str) -> InputDevice:
        parts = text.split(None, 1)
        token = _unquote(parts[0])
        rest = parts[1] if len(parts) > 1 else ""
        if not token.isascii():
            raise _RowError(_non_ascii(token, "identifier"))
        if self.expect is Expect.ICCIDS:
            iccid = self.parse_iccid(token)
            if rest:
                raise _RowError(f"ICCID {iccid} is followed by more text: one ICCID per line")
            return InputDevice(line, iccid, iccid=iccid)
        try:
            identifier = parse_identifier(token)
        except InvalidIdentifier as err:
            if rest:  # do not echo the rest: it may be a sticker's mobile secret
                raise _RowError(f"{err} (and more text follows it on the line)") from None
            raise
        if isinstance(identifier, SerialNumber):
            serial = _parse_serial(f"{identifier} {rest}" if rest else identifier)
            return InputDevice(line, serial, serial=serial)
        if rest:
            raise _RowError(
                f"{identifier.kind} {identifier} is followed by more text: one identifier "
                f"per line (only a serial may be followed by its sticker's mobile secret)"
            )
        if isinstance(identifier, DeviceId):
            return InputDevice(line, identifier, device_id=identifier)
        if isinstance(identifier, Iccid):
            return InputDevice(line, identifier, iccid=identifier)
        return InputDevice(line, identifier, imei=identifier)

    def parse_iccid(self, value: str) -> Iccid:
        try:
            return Iccid.parse(value)
        except InvalidIdentifier as err:
            try:
                other = parse_identifier(value)
            except InvalidIdentifier:
                raise err from None
            article = "an" if other.kind == Imei.kind else "a"
            raise _RowError(f"{other} is {article} {other.kind}, not an ICCID") from None

    def parse_csv(self, lines: list[str], header: _Header) -> None:
        delimiter, width = header.delimiter, header.width
        fields = list(header.columns.items())
        for index in range(header.line, len(lines)):
            raw = lines[index]
            line = index + 1
            if len(raw) > MAX_LINE_CHARS:
                self.problem(line, _long_line(raw))
                continue
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            try:
                cells = _split_cells(raw.strip(" ") if delimiter == "\t" else text, delimiter)
            except csv.Error as err:
                self.problem(
                    line,
                    f"unbalanced or misplaced quotes ({err}); a value may not span lines",
                )
                continue
            while len(cells) > width and not cells[-1]:
                cells.pop()  # spreadsheets pad rows with empty cells
            if not any(cells):
                continue
            if len(cells) != width:
                count = f"{len(cells)} value" + ("s" if len(cells) != 1 else "")
                self.problem(
                    line,
                    f"row has {count} but the header (line {header.line}) has "
                    f"{width} columns separated by {_DELIMITER_NAMES[delimiter]}s: "
                    f"a missing or extra {_DELIMITER_NAMES[delimiter]}?",
                )
                continue
            values: dict[str, Identifier] = {}
            errors: list[str] = []
            for field, column in fields:
                cell = _unquote(cells[column])
                if not cell:
                    continue
                try:
                    values[field] = self.parse_cell(field, cell)
                except (InvalidIdentifier, _RowError) as err:
                    errors.append(f"column {header.names[field]!r}: {err}")
            if errors:
                self.problem(line, "; ".join(errors))
                continue
            identifier = next((values[f] for f in _PRIORITY[self.expect] if f in values), None)
            if identifier is None:
                wanted = " / ".join(repr(header.names[f]) for f in header.columns)
                if self.expect is Expect.ICCIDS:
                    wanted = repr(header.names["iccid"])
                self.problem(line, f"no identifier in this row ({wanted} empty)")
                continue
            self.accept(
                InputDevice(
                    line,
                    identifier,
                    device_id=_typed(values.get("device_id"), DeviceId),
                    serial=_typed(values.get("serial"), SerialNumber),
                    iccid=_typed(values.get("iccid"), Iccid),
                    imei=_typed(values.get("imei"), Imei),
                )
            )

    def parse_cell(self, field: str, cell: str) -> Identifier:
        first = cell.split(None, 1)[0]
        if not first.isascii():
            raise _RowError(_non_ascii(first, "value"))
        if field == "serial":
            return _parse_serial(cell)
        if first != cell:
            # Possibly a sticker scan (serial + secret) in the wrong column: do not echo it.
            raise _RowError(
                f"holds more than one word; expected a single {_FIELD_KIND[field]} "
                f"(a sticker scan in the wrong column?)"
            )
        if field == "device_id":
            return DeviceId.parse(cell)
        if field == "iccid":
            return self.parse_iccid(cell)
        return Imei.parse(cell)

    # ----------------------------------------------------------------- duplicates

    def accept(self, device: InputDevice) -> None:
        """Keep ``device`` unless it repeats (or contradicts) an earlier row.

        Rows are matched on any identifier they share. A row that only repeats
        what an earlier row said is a duplicate: reported and dropped. A row
        that shares one identifier but disagrees on another (the same device ID
        with two serials) is a problem: one of the two rows is wrong.
        """
        keys = [
            (field, value)
            for field, value in (
                ("device_id", device.device_id),
                ("serial", device.serial),
                ("iccid", device.iccid),
                ("imei", device.imei),
            )
            if value is not None
        ]
        earlier = [self._seen[key] for key in keys if key in self._seen]
        if earlier:
            first = min(earlier, key=lambda d: d.line)
            for field in _FIELD_KIND:  # field names are InputDevice attributes
                mine, theirs = getattr(device, field), getattr(first, field)
                if mine is not None and theirs is not None and mine != theirs:
                    shared = next(k for k in keys if self._seen.get(k) is first)
                    self.problem(
                        device.line,
                        f"{_FIELD_KIND[shared[0]]} {shared[1]} is also on line {first.line}, "
                        f"but with {_FIELD_KIND[field]} {theirs} there and {mine} here: "
                        f"one of the two rows is wrong",
                    )
                    return
            field, value = next(k for k in keys if k in self._seen)
            self.duplicates.append(
                Duplicate(self.path, device.line, first.line, _FIELD_KIND[field], value)
            )
            return
        for key in keys:
            self._seen[key] = device
        self.devices.append(device)


_T = TypeVar("_T", bound=str)


def _typed(value: Identifier | None, kind: type[_T]) -> _T | None:
    """Narrow a parsed cell to its column's type (parse_cell guarantees it)."""
    if value is None:
        return None
    assert isinstance(value, kind)
    return value


def _long_line(raw: str) -> str:
    return (
        f"line is {len(raw):,} characters long (the limit is {MAX_LINE_CHARS:,}): "
        f"not a row of identifiers (binary data, or a list joined into one line?)"
    )

"""The row parser behind :func:`trayline.inputs.parse_inputs`: lists, CSV tray lists, duplicates.

Two formats are told apart by the first line that is not blank or a comment: a
header naming an identifier column makes the file a CSV tray list; anything
else is a list with one identifier (or sticker scan) per line. The parser
records every problem and duplicate and decides nothing: the run policy is
:meth:`InputResult.raise_if_invalid`'s.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Literal, TypeVar

from trayline.core.ids import (
    DeviceId,
    Iccid,
    Imei,
    InvalidIdentifier,
    SerialNumber,
    parse_identifier,
)
from trayline.inputs.cells import (
    RowError,
    long_line,
    non_ascii,
    parse_iccid,
    parse_serial,
    split_cells,
    unquote,
)
from trayline.inputs.results import (
    MAX_LINE_CHARS,
    Duplicate,
    Expect,
    Identifier,
    InputDevice,
    InputFormat,
    InputProblem,
    InputResult,
)

__all__ = ["Parser"]

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


class Parser:
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
                cells = split_cells(raw.strip(" "), delimiter)
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
                self.problem(line, long_line(raw))
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
            except RowError as err:
                self.problem(line, str(err))
                continue
            except InvalidIdentifier as err:
                self.problem(line, str(err))
                continue
            self.accept(device)

    def list_row(self, line: int, text: str) -> InputDevice:
        parts = text.split(None, 1)
        token = unquote(parts[0])
        rest = parts[1] if len(parts) > 1 else ""
        if not token.isascii():
            raise RowError(non_ascii(token, "identifier"))
        if self.expect is Expect.ICCIDS:
            iccid = parse_iccid(token)
            if rest:
                raise RowError(f"ICCID {iccid} is followed by more text: one ICCID per line")
            return InputDevice(line, iccid, iccid=iccid)
        try:
            identifier = parse_identifier(token)
        except InvalidIdentifier as err:
            if rest:  # do not echo the rest: it may be a sticker's mobile secret
                raise RowError(f"{err} (and more text follows it on the line)") from None
            raise
        if isinstance(identifier, SerialNumber):
            serial = parse_serial(f"{identifier} {rest}" if rest else identifier)
            return InputDevice(line, serial, serial=serial)
        if rest:
            raise RowError(
                f"{identifier.kind} {identifier} is followed by more text: one identifier "
                f"per line (only a serial may be followed by its sticker's mobile secret)"
            )
        if isinstance(identifier, DeviceId):
            return InputDevice(line, identifier, device_id=identifier)
        if isinstance(identifier, Iccid):
            return InputDevice(line, identifier, iccid=identifier)
        return InputDevice(line, identifier, imei=identifier)

    def parse_csv(self, lines: list[str], header: _Header) -> None:
        delimiter, width = header.delimiter, header.width
        fields = list(header.columns.items())
        for index in range(header.line, len(lines)):
            raw = lines[index]
            line = index + 1
            if len(raw) > MAX_LINE_CHARS:
                self.problem(line, long_line(raw))
                continue
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            try:
                cells = split_cells(raw.strip(" ") if delimiter == "\t" else text, delimiter)
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
                cell = unquote(cells[column])
                if not cell:
                    continue
                try:
                    values[field] = self.parse_cell(field, cell)
                except (InvalidIdentifier, RowError) as err:
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
            raise RowError(non_ascii(first, "value"))
        if field == "serial":
            return parse_serial(cell)
        if first != cell:
            # Possibly a sticker scan (serial + secret) in the wrong column: do not echo it.
            raise RowError(
                f"holds more than one word; expected a single {_FIELD_KIND[field]} "
                f"(a sticker scan in the wrong column?)"
            )
        if field == "device_id":
            return DeviceId.parse(cell)
        if field == "iccid":
            return parse_iccid(cell)
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

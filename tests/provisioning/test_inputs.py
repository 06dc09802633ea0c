"""Tests for trayline.inputs: the files a provisioning job starts from."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from malformed_inputs import DEVICE, ICCID, MALFORMED_INPUTS, SECRET, SERIAL, MalformedInput

from trayline.core.ids import DeviceId, Iccid, Imei, SerialNumber, luhn_check_digit
from trayline.inputs import (
    MAX_LINE_CHARS,
    Expect,
    InputError,
    InputFileError,
    InputRejected,
    InputResult,
    parse_inputs,
    read_inputs,
)

IMEI = "35209900176148" + luhn_check_digit("35209900176148")


def _read(tmp_path: Path, content: bytes | str, *, expect: Expect = Expect.DEVICES) -> InputResult:
    path = tmp_path / "input.txt"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_inputs(path, expect=expect)


def _ids(result: InputResult) -> list[str]:
    return [str(device.identifier) for device in result.devices]


# ------------------------------------------------------------------ happy paths


def test_list_with_bom_crlf_blanks_comments_spaces_and_mixed_case(tmp_path: Path) -> None:
    content = (
        "\ufeff# tray 4, slot order\r\n"
        "\r\n"
        f"  {DEVICE.upper()}  \r\n"
        f"\t{SERIAL.lower()}\r\n"
        "   # an indented comment\r\n"
        f"{ICCID}  # SIM on the carrier card\r\n"
        f"{IMEI}\r\n"
    )
    result = _read(tmp_path, content)
    assert result.ok
    assert result.format == "list"
    assert _ids(result) == [DEVICE, SERIAL, ICCID, IMEI]
    assert [d.kind for d in result.devices] == ["device ID", "serial number", "ICCID", "IMEI"]
    assert [d.line for d in result.devices] == [3, 4, 6, 7]
    first = result.devices[0]
    assert isinstance(first.identifier, DeviceId) and first.device_id == DEVICE
    assert isinstance(result.devices[1].serial, SerialNumber)
    assert isinstance(result.devices[2].iccid, Iccid)
    assert isinstance(result.devices[3].imei, Imei)
    result.raise_if_invalid()


def test_lone_cr_line_endings_and_no_final_newline(tmp_path: Path) -> None:
    result = _read(tmp_path, f"{DEVICE}\r{SERIAL}")
    assert result.ok and _ids(result) == [DEVICE, SERIAL]
    assert [d.line for d in result.devices] == [1, 2]


def test_quoted_identifier_in_a_list_is_unquoted(tmp_path: Path) -> None:
    assert _ids(_read(tmp_path, f'"{DEVICE}"\n')) == [DEVICE]


def test_sticker_secret_is_dropped_everywhere(tmp_path: Path) -> None:
    content = f"{SERIAL} {SECRET}\nP028AB1234567XZ\t{SECRET}\nbad-line {SECRET}\n"
    result = _read(tmp_path, content)
    assert _ids(result) == [SERIAL, "P028AB1234567XZ"]
    assert all(d.kind == "serial number" for d in result.devices)
    assert len(result.problems) == 1 and result.problems[0].line == 3
    with pytest.raises(InputRejected) as caught:
        result.raise_if_invalid()
    for text in (repr(result), str(result.problems[0]), str(caught.value)):
        assert SECRET not in text


def test_sticker_in_csv_serial_column(tmp_path: Path) -> None:
    result = _read(tmp_path, f"Serial Number\n{SERIAL} {SECRET}\n")
    assert result.format == "csv" and _ids(result) == [SERIAL]
    assert SECRET not in repr(result)


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("device_id,serial_number,iccid", ","),
        ("Device ID;Serial Number;ICCID", ";"),
        ("deviceID\tserialNumber\ticcid", "\t"),
        ('"id","serial","ICCID"', ","),
        ("DEVICE-ID, Serial_Number , iccid", ","),
    ],
)
def test_tray_list_csv_keeps_device_id_serial_and_iccid(
    tmp_path: Path, header: str, delimiter: str
) -> None:
    rows = [
        header,
        delimiter.join([DEVICE.upper(), SERIAL, ICCID]),
        delimiter.join(["", "P028AB1234567XZ", ""]),
    ]
    result = _read(tmp_path, "\r\n".join(rows) + "\r\n")
    assert result.ok, result.problems
    assert result.format == "csv"
    first, second = result.devices
    assert (first.line, first.identifier, first.kind) == (2, DEVICE, "device ID")
    assert (first.device_id, first.serial, first.iccid) == (DEVICE, SERIAL, ICCID)
    assert (second.identifier, second.kind, second.device_id) == (
        "P028AB1234567XZ",
        "serial number",
        None,
    )


def test_csv_ignores_other_columns_padding_comments_and_quotes(tmp_path: Path) -> None:
    content = (
        "\ufefftray,slot,Device ID,notes\n"
        "# rows below came from the scanner\n"
        f'4,1,{DEVICE},"fine, thanks"\n'
        ",,,\n"
        f'4,2," {DEVICE[:-1]}8 ",,,,\n'
    )
    result = _read(tmp_path, content)
    assert result.ok, result.problems
    assert _ids(result) == [DEVICE, DEVICE[:-1] + "8"]
    assert [d.line for d in result.devices] == [3, 5]


def test_single_column_header(tmp_path: Path) -> None:
    result = _read(tmp_path, f"Device ID\n{DEVICE}\n")
    assert result.format == "csv" and _ids(result) == [DEVICE]


def test_utf16_with_bom_is_accepted(tmp_path: Path) -> None:
    """Excel's "Unicode Text" export: UTF-16 LE with a BOM, tab-delimited."""
    content = f"Device ID\tSerial Number\r\n{DEVICE}\t{SERIAL}\r\n".encode("utf-16")
    result = _read(tmp_path, content)
    assert result.ok and result.format == "csv" and _ids(result) == [DEVICE]


def test_parse_inputs_takes_bytes(tmp_path: Path) -> None:
    result = parse_inputs(f"{DEVICE}\n".encode(), path="tray.txt")
    assert result.path == "tray.txt" and _ids(result) == [DEVICE]


# ------------------------------------------------------------------ ICCID files


def test_iccid_list_and_csv(tmp_path: Path) -> None:
    listed = _read(tmp_path, f"{ICCID}\n8934076500002589182\n", expect=Expect.ICCIDS)
    assert _ids(listed) == [ICCID, "8934076500002589182"]
    assert all(d.kind == "ICCID" for d in listed.devices)
    tray = _read(tmp_path, f"device_id,ICCID\n{DEVICE},{ICCID}\n", expect=Expect.ICCIDS)
    assert tray.ok and _ids(tray) == [ICCID] and tray.devices[0].device_id == DEVICE


def test_iccid_file_rejects_other_identifiers_with_a_hint(tmp_path: Path) -> None:
    result = _read(tmp_path, f"{SERIAL}\n{IMEI}\n", expect=Expect.ICCIDS)
    assert [p.message for p in result.problems] == [
        f"{SERIAL} is a serial number, not an ICCID",
        f"{IMEI} is an IMEI, not an ICCID",
    ]


# ------------------------------------------------------------------ duplicates


def test_duplicates_are_reported_and_removed(tmp_path: Path) -> None:
    content = f"{DEVICE}\n{SERIAL}\n{DEVICE.upper()}\n{SERIAL.lower()} {SECRET}\n{DEVICE}\n"
    result = _read(tmp_path, content)
    assert result.ok
    assert _ids(result) == [DEVICE, SERIAL]
    assert [(d.line, d.first_line, d.kind) for d in result.duplicates] == [
        (3, 1, "device ID"),
        (4, 2, "serial number"),
        (5, 1, "device ID"),
    ]
    path = str(tmp_path / "input.txt")
    assert str(result.duplicates[0]) == (
        f"{path}:3: duplicate device ID {DEVICE} (first on line 1); ignored"
    )
    result.raise_if_invalid()


def test_device_id_and_serial_in_one_row_are_not_duplicates(tmp_path: Path) -> None:
    content = f"device_id,serial_number\n{DEVICE},{SERIAL}\n,{SERIAL}\n"
    result = _read(tmp_path, content)
    assert result.ok and _ids(result) == [DEVICE]
    assert [(d.line, d.first_line, d.kind) for d in result.duplicates] == [(3, 2, "serial number")]


def test_conflicting_rows_are_a_problem_not_a_duplicate(tmp_path: Path) -> None:
    content = f"device_id,serial_number\n{DEVICE},{SERIAL}\n{DEVICE},P028AB1234567XQ\n"
    result = _read(tmp_path, content)
    assert not result.duplicates and len(result.problems) == 1
    assert "also on line 2" in result.problems[0].message


# ------------------------------------------------------------------ policy


def test_invalid_rows_stop_the_run_unless_skipped(tmp_path: Path) -> None:
    result = _read(tmp_path, f"{DEVICE}\nnot-an-id\n{SERIAL}\n")
    assert _ids(result) == [DEVICE, SERIAL]
    path = str(tmp_path / "input.txt")
    assert [str(p) for p in result.problems] == [
        f"{path}:2: 'not-an-id' is not a device ID (24 hex), serial number "
        f"(15 letters/digits), ICCID (18-21 digits from 89) or IMEI (15 digits)"
    ]
    with pytest.raises(InputRejected, match="--skip-invalid"):
        result.raise_if_invalid()
    result.raise_if_invalid(skip_invalid=True)


def test_skip_invalid_cannot_skip_a_whole_file_problem(tmp_path: Path) -> None:
    result = _read(tmp_path, b"name,place\n")
    with pytest.raises(InputRejected, match="not usable"):
        result.raise_if_invalid(skip_invalid=True)


def test_skip_invalid_with_nothing_left(tmp_path: Path) -> None:
    result = _read(tmp_path, "nope\nnada\n")
    with pytest.raises(InputRejected, match="no valid devices left"):
        result.raise_if_invalid(skip_invalid=True)


def test_rejection_lists_at_most_twenty_problems(tmp_path: Path) -> None:
    result = _read(tmp_path, "bad\n" * 50)
    with pytest.raises(InputRejected) as caught:
        result.raise_if_invalid()
    assert "… and 30 more problems" in str(caught.value)
    assert len(caught.value.problems) == 50


def test_long_line_is_not_echoed(tmp_path: Path) -> None:
    result = _read(tmp_path, DEVICE + "\n" + "Z" * (MAX_LINE_CHARS + 1) + "\n")
    (problem,) = result.problems
    assert problem.line == 2 and "4,097 characters" in problem.message
    assert "ZZZZZZZZZZ" not in problem.message


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "secret.txt"
    path.write_text(DEVICE)
    path.chmod(0)
    with pytest.raises(InputFileError, match="permission denied"):
        read_inputs(path)


def test_max_bytes_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(DEVICE + "\n")
    with pytest.raises(InputFileError, match="too big"):
        read_inputs(path, max_bytes=10)


# ------------------------------------------------------------------ malformed corpus


def test_corpus_is_big_and_ids_are_unique() -> None:
    ids = [case.id for case in MALFORMED_INPUTS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 35


@pytest.mark.parametrize("case", MALFORMED_INPUTS, ids=lambda case: case.id)
def test_malformed_input_is_reported_with_file_and_line(
    case: MalformedInput, tmp_path: Path
) -> None:
    path = case.create(tmp_path)
    try:
        result = read_inputs(path, expect=case.expect)
    except InputFileError as err:
        assert case.file_error, f"unexpected InputFileError: {err}"
        assert str(err).startswith(f"{path}: ")
        assert case.reason.lower() in str(err).lower()
        return
    assert not case.file_error, "expected InputFileError"
    assert result.problems, "no problem reported"
    prefix = f"{path}:{case.line}: "
    matching = [
        str(p)
        for p in result.problems
        if str(p).startswith(prefix) and case.reason.lower() in str(p).lower()
    ]
    assert matching, [str(p) for p in result.problems]
    assert all(re.match(rf"{re.escape(str(path))}:\d+: \S", str(p)) for p in result.problems)
    with pytest.raises(InputRejected):
        result.raise_if_invalid()
    if case.secret:
        with pytest.raises(InputRejected) as caught:
            result.raise_if_invalid()
        assert case.secret not in str(caught.value)
        assert case.secret not in repr(result)


# ------------------------------------------------------------------ robustness


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from(list(Expect)))
def test_random_bytes_never_raise(data: bytes, expect: Expect) -> None:
    result = parse_inputs(data, path="junk.bin", expect=expect)
    for problem in result.problems:
        assert str(problem).startswith("junk.bin:")
    with contextlib.suppress(InputError):
        result.raise_if_invalid()


_CELLS = st.sampled_from(
    [DEVICE, DEVICE.upper(), SERIAL, f"{SERIAL} {SECRET}", ICCID, IMEI, "", " ", '"', "#", "x"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_CELLS, max_size=5), max_size=12),
    st.sampled_from([",", ";", "\t", " "]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)
def test_random_tables_never_raise_or_leak_the_secret(
    rows: list[list[str]], delimiter: str, newline: str, header: bool
) -> None:
    lines = [delimiter.join(row) for row in rows]
    if header:
        lines.insert(0, delimiter.join(["device_id", "serial_number", "iccid"]))
    result = parse_inputs(newline.join(lines).encode(), path="t.csv")
    assert SECRET not in repr(result)
    assert all(SECRET not in str(p) for p in result.problems)


def test_hundred_thousand_lines_parse(tmp_path: Path) -> None:
    listed = "".join(f"{n:024x}\n" for n in range(100_000))
    result = _read(tmp_path, listed)
    assert len(result.devices) == 100_000 and result.ok
    tray = "device_id,serial_number,iccid\n" + "".join(
        f"{n:024x},P028{n:011d},89340765{n:011d}\n" for n in range(100_000)
    )
    result = _read(tmp_path, tray)
    assert len(result.devices) == 100_000 and result.ok

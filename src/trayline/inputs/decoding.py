"""Turning the bytes of an input file into text, or saying exactly why they are not.

A wrong guess at an encoding would turn a serial into a different serial, so
only UTF-8 (with or without BOM) and UTF-16 with a BOM are accepted; anything
else is refused with the line and byte offset that gives it away.
"""

from __future__ import annotations

import codecs

__all__ = ["NotText", "decode_text", "line_of"]


class NotText(Exception):
    """The file is not text trayline reads; ``line`` and ``message`` say why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def decode_text(data: bytes) -> str:
    """The file's text; raises :class:`NotText` saying why it is not text.

    Accepted: UTF-8 with or without a byte-order mark, and UTF-16 *with* a
    byte-order mark (what Excel's "Unicode Text" export writes). Anything
    else (Latin-1, UTF-16 without BOM, UTF-32, binary) is refused with the
    line and byte offset of the first byte that gives it away, rather than
    guessed at: a wrong guess would turn a serial into a different serial.
    """
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise NotText(1, "file is UTF-32 text: save it as UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as err:
            shown = data[: err.start].decode("utf-16", errors="replace")
            line, _ = line_of(shown, len(shown))
            raise NotText(
                line,
                f"file starts with a UTF-16 byte-order mark but is not valid UTF-16 "
                f"at byte offset {err.start} ({err.reason}): save it as UTF-8",
            ) from None
        nul = text.find("\x00")
        if nul >= 0:
            line, column = line_of(text, nul)
            raise NotText(
                line, f"NUL character at column {column}: this is not a text file of identifiers"
            )
        return text
    if data.startswith(b"PK\x03\x04"):
        raise NotText(
            1,
            "file is a ZIP archive (an Excel .xlsx workbook?), not text: "
            "export the sheet as CSV (UTF-8)",
        )
    # Report whichever comes first: a NUL byte (binary, or UTF-16 without
    # BOM) or a byte sequence that is not UTF-8.
    nul = data.find(b"\x00")
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start + (len(data) - len(body))
        if nul < 0 or offset < nul:
            line, column = line_of(data, offset)
            raise NotText(
                line,
                f"not UTF-8: byte 0x{data[offset]:02X} at byte offset {offset} "
                f"(column {column}) cannot be decoded; the file is not text, or was saved "
                f"as Latin-1/Windows-1252: save it as UTF-8 (Excel: 'CSV UTF-8')",
            ) from None
    if nul >= 0:
        line, column = line_of(data, nul)
        raise NotText(
            line,
            f"NUL byte at byte offset {nul} (column {column}): this is a binary file, "
            f"or text saved as UTF-16 without a byte-order mark; save it as UTF-8 text",
        )
    return text


def line_of(text: bytes | str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset``, counting CRLF, LF and lone CR as breaks."""
    head = text[:offset]
    if isinstance(head, bytes):
        lf, cr, crlf = head.count(b"\n"), head.count(b"\r"), head.count(b"\r\n")
        start = max(head.rfind(b"\n"), head.rfind(b"\r")) + 1
    else:
        lf, cr, crlf = head.count("\n"), head.count("\r"), head.count("\r\n")
        start = max(head.rfind("\n"), head.rfind("\r")) + 1
    return lf + cr - crlf + 1, offset - start + 1

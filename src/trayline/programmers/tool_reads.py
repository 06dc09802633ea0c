"""The two ways a command-line tool reads memory, each written once.

* **Printed or dumped** (OpenOCD ``mdb``/``dump_image``, JLinkExe
  ``mem8``/``savebin``): a small read is printed as hex lines (``ADDR: bytes``)
  and parsed; a large one goes to a file the tool writes, because printing
  256 KB as text is slow and fragile. Several reads go into one run
  (:meth:`DumpReads._read_many`), so a module scan costs two tool starts, not
  one per region.
* **Words** (nrfjprog ``--memrd``, STM32CubeProgrammer ``-r32``): the tool
  reads 32-bit words and prints their *values*; the request is widened to
  4-byte alignment, the words turned back into little-endian bytes and the
  extra bytes dropped.

A backend states its verbs and its line parser; the read logic, the file names
and the timeouts are the same for all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from trayline.programmers.base import ToolFailed
from trayline.programmers.tool_programmer import ToolProgrammer

__all__ = ["DumpReads", "WordReads", "gather", "parse_word_lines"]

_WORD_WINDOW = 65536
"""Word reads up to this many bytes get the read timeout; longer ones the write timeout."""


def gather(lines: Sequence[tuple[int, bytes]], address: int, length: int) -> bytes:
    """The bytes of one range from printed ``(line address, bytes)`` lines.

    Lines are taken in order where they continue the range; other ranges'
    lines (and register dumps) are passed over. Fewer bytes than asked is
    returned as is: the caller's length check names the shortfall.
    """
    data = bytearray()
    for at, chunk in lines:
        if len(data) >= length:
            break
        if at == address + len(data):
            data += chunk
    return bytes(data)


class DumpReads(ToolProgrammer):
    """Small reads printed (``inline_verb ADDR N``), large ones dumped (``dump_verb FILE …``)."""

    inline_verb: ClassVar[str] = ""
    dump_verb: ClassVar[str] = ""
    dump_success: ClassVar[str] = ""
    """What the tool prints after a dump (a dump without it is a failure)."""
    inline_limit: ClassVar[int] = 256
    printed_line: ClassVar[re.Pattern[str]] = re.compile(r"(?!)")
    """A printed memory line: group 1 the address (hex), group 2 the bytes (hex, spaced)."""

    def parse_inline(self, output: str, address: int, length: int) -> bytes:
        """One printed read, checked against the request (``ValueError`` otherwise)."""
        raise NotImplementedError

    def printed_lines(self, output: str) -> list[tuple[int, bytes]]:
        """Every printed memory line of a run, as ``(address, bytes)``."""
        return [
            (int(m.group(1), 16), bytes.fromhex(m.group(2).replace(" ", "")))
            for m in self.printed_line.finditer(output)
        ]

    def _inline(self, address: int, length: int) -> str:
        return f"{self.inline_verb} {address:#010x} {length}"

    def _dump(self, path: Path, address: int, length: int) -> str:
        path.unlink(missing_ok=True)
        return f"{self.dump_verb} {path} {address:#010x} {length}"

    def _read(self, address: int, length: int) -> bytes:
        if length <= self.inline_limit:
            run = self._run(self._inline(address, length), timeout=self.read_timeout)
            return self._parsed(
                self.inline_verb, run, lambda: self.parse_inline(run.output, address, length)
            )
        path = self.workdir() / f"read-{address:08x}-{length}.bin"
        self._run(
            self._dump(path, address, length),
            timeout=self.write_timeout,
            success=self.dump_success,
        )
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ToolFailed(
                f"{self.tool_label} {self.dump_verb} wrote no file: {exc}", slot=self.slot
            ) from exc

    def _read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """All ranges in one run: printed reads for small ones, dumps for the rest."""
        commands: list[str] = []
        dumps: list[Path | None] = []
        for index, (address, length) in enumerate(ranges):
            if length <= self.inline_limit:
                commands.append(self._inline(address, length))
                dumps.append(None)
            else:
                path = self.workdir() / f"read-{index}-{address:08x}-{length}.bin"
                commands.append(self._dump(path, address, length))
                dumps.append(path)
        run = self._run(*commands, timeout=self.write_timeout)
        lines = self.printed_lines(run.output)
        out: list[bytes] = []
        for (address, length), dump in zip(ranges, dumps, strict=True):
            if dump is None:
                out.append(gather(lines, address, length))
            else:
                out.append(dump.read_bytes() if dump.exists() else b"")
        return out


def parse_word_lines(
    output: str, address: int, length: int, *, line: re.Pattern[str], what: str
) -> bytes:
    """Bytes from printed 32-bit words (``0xADDR: WORD WORD …``; values, little-endian in memory).

    ``line`` captures the address (hex digits) and the words; the lines must
    follow each other without a gap and add up to ``length`` bytes.
    """
    data = bytearray()
    for match in line.finditer(output):
        line_address = int(match.group(1), 16)
        if line_address != address + len(data):
            raise ValueError(f"{what} output jumps to {line_address:#x}")
        for word in match.group(2).split():
            data += int(word, 16).to_bytes(4, "little")
    if len(data) != length:
        raise ValueError(f"{what} printed {len(data)} bytes, {length} were asked for")
    return bytes(data)


class WordReads(ToolProgrammer):
    """Reads as whole 32-bit words, widened to alignment and trimmed back."""

    word_verb: ClassVar[str] = ""
    """How messages name the read (``--memrd``, ``-r32``)."""

    def word_read_args(self, start: int, count: int) -> list[str]:
        """The arguments reading ``count`` bytes (a multiple of 4) from ``start``."""
        raise NotImplementedError

    def parse_words(self, output: str, start: int, count: int) -> bytes:
        raise NotImplementedError

    def _read(self, address: int, length: int) -> bytes:
        start = address - address % 4
        end = -(-(address + length) // 4) * 4
        count = end - start
        timeout = self.read_timeout if count <= _WORD_WINDOW else self.write_timeout
        run = self._run(*self.word_read_args(start, count), timeout=timeout)
        words = self._parsed(
            self.word_verb, run, lambda: self.parse_words(run.output, start, count)
        )
        return words[address - start : address - start + length]

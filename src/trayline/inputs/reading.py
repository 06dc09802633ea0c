"""Reading one input file from disk: the size and kind checks before any parsing.

A file that cannot be read at all raises :class:`InputFileError`; everything
else becomes a problem in the returned :class:`InputResult`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from trayline.inputs.decoding import NotText, decode_text
from trayline.inputs.parser import Parser
from trayline.inputs.results import MAX_FILE_BYTES, Expect, InputFileError, InputResult

__all__ = ["parse_inputs", "read_inputs"]


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
    parser = Parser(path, expect)
    try:
        text = decode_text(data)
    except NotText as err:
        parser.problem(err.line, err.message, whole_file=True)
    else:
        parser.parse(text)
    return parser.result()

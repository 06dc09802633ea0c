"""What reading an input file produces: accepted rows, problems, duplicates, errors.

These types are shared by every reader in :mod:`trayline.inputs` and by the
services that consume them (provisioning, SIM activation). They hold no
parsing logic, so a caller can build or inspect results without reading files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from trayline.core.ids import DeviceId, Iccid, Imei, SerialNumber

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

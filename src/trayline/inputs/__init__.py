"""Files people bring to the line: tray lists, device lists, sticker scans, SIM packs.

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

Layout: :mod:`~trayline.inputs.results` (what a read produces),
:mod:`~trayline.inputs.reading` (files), :mod:`~trayline.inputs.decoding`
(bytes to text), :mod:`~trayline.inputs.parser` (rows, headers, duplicates),
:mod:`~trayline.inputs.cells` (one value: serials, sticker scans, ICCIDs).
This package is an adapter: it imports only :mod:`trayline.core`.
"""

from trayline.inputs.reading import parse_inputs, read_inputs
from trayline.inputs.results import (
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    Duplicate,
    Expect,
    Identifier,
    InputDevice,
    InputError,
    InputFileError,
    InputProblem,
    InputRejected,
    InputResult,
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

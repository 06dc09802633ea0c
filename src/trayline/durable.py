"""Writing a file so that a crash or power cut leaves either the old file or the new one.

The data goes to a temporary file in the same folder, is fsynced, and is then
renamed over the target: a rename within one file system is atomic, so readers
(and a process restarted after a kill) never see a torn file. The folder is
then fsynced too, so the rename itself survives a power cut. The new file has
mode 0600 (``mkstemp``'s), which the local cloud's state file relies on: it
holds tokens. Used for firmware
bundle blobs and the local cloud's ``--state`` file. Standard library only, so
any layer may use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["fsync_directory", "write_atomically"]


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once, creating its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(folder: Path) -> None:
    """Make a rename (or a new file) in ``folder`` survive a power cut.

    The rename is atomic, but on POSIX file systems it lives in the folder's
    own data until that is flushed: without this a power cut right after
    ``write_atomically`` returns can bring back the old file (or none). Windows
    cannot open a folder for fsync and makes renames durable itself.
    """
    if os.name == "nt":  # pragma: no cover - not a platform trayline's CI runs on
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

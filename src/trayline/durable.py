"""Writing a file so that a crash or power cut leaves either the old file or the new one.

The data goes to a temporary file in the same folder, is fsynced, and is then
renamed over the target: a rename within one file system is atomic, so readers
(and a process restarted after a kill) never see a torn file. The new file has
mode 0600 (``mkstemp``'s), which the local cloud's state file relies on: it
holds tokens. Used for firmware
bundle blobs and the local cloud's ``--state`` file. Standard library only, so
any layer may use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


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

"""How a programmer ends: ``with backend.open(probe) as prog:`` closes it, and its files go.

Every backend is used as a context manager (the station opens one per slot
and must release the probe even when a step fails), and the tool-driven ones
hand files to their tool — module binaries, command files, dumps — which must
not pile up in ``/tmp`` over a shift of thousands of units. Both rules are
written once here:

* :class:`ClosesOnExit` — ``__enter__`` returns the programmer, ``__exit__``
  calls ``close``, whatever happened inside the ``with``;
* :class:`KeepsWorkdir` — a private temporary folder made on first use
  (``trayline-<backend>-…``) and removed by ``close``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Self

__all__ = ["ClosesOnExit", "KeepsWorkdir"]


class ClosesOnExit:
    """A programmer that is its own context manager."""

    def close(self) -> None:
        """Release what the programmer holds; backends extend this."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeepsWorkdir(ClosesOnExit):
    """A programmer with a private temporary folder for the files it hands to its tool."""

    name: str = "programmer"
    _workdir: Path | None = None

    def workdir(self) -> Path:
        """The folder (made on first use); removed on close."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"trayline-{self.name}-"))
        return self._workdir

    def close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

"""trayline.durable: the one crash-safe file write (data fsynced, renamed, folder fsynced)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from trayline.durable import write_atomically


def test_replaces_whole_file_private(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    write_atomically(target, b"old")
    write_atomically(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"], "no temp file left"


def test_fsyncs_the_file_then_the_folder_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the folder fsync a power cut can undo the rename; it must come after it."""
    target = tmp_path / "blob"
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        synced.append(("dir" if is_dir else "file", target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_atomically(target, b"x")
    assert synced == [("file", False), ("dir", True)]


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "blob"
    write_atomically(target, b"old")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space"):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]

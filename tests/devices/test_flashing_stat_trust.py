"""A stored bundle file is not re-hashed while its stat is unchanged — and any write still shows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from firmware.modulekit import boron_set, write_all
from trayline.core.skus import get_sku
from trayline.firmware import flashing
from trayline.firmware.bundle import BundleError, create_bundle, get_bundle
from trayline.firmware.flashing import flash_bundle
from trayline.store.db import Store

from .fakeprog import FakeProgrammer


@pytest.fixture(autouse=True)
def _bundles_beside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAYLINE_BUNDLE_DIR", str(tmp_path / "bundles"))


def _stored_blob(store: Store, tmp_path: Path) -> tuple[str, Path]:
    files = write_all(tmp_path / "src", boron_set())
    create_bundle(store, name="trusted", sku=get_sku("BRN404X"), files=files)
    info = get_bundle(store, "trusted")
    return "trusted", next(p for p in (tmp_path / "bundles").rglob(info.entries[-1].file_sha256))


def test_a_write_to_a_trusted_file_is_refused(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flashing, "RACY_NS", 0)  # trust a stat at once (no 2 s wait)
    name, blob = _stored_blob(store, tmp_path)
    prog = FakeProgrammer()
    flash_bundle(store, prog, name)
    flash_bundle(store, prog, name)  # re-checked: hashed, its stat kept
    assert blob in flashing._hashed
    time.sleep(0.05)  # past a coarse file-system clock tick
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")  # same size, same inode
    writes = len(prog.writes)
    with pytest.raises(BundleError, match="changed on disk"):
        flash_bundle(store, prog, name)
    assert len(prog.writes) == writes


def test_a_file_written_just_before_its_hash_is_not_trusted(store: Store, tmp_path: Path) -> None:
    name, blob = _stored_blob(store, tmp_path)
    flash_bundle(store, FakeProgrammer(), name)
    flash_bundle(store, FakeProgrammer(), name)
    assert blob not in flashing._hashed  # created within RACY_NS: hashed at every use

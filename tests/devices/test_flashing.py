"""The flashing service: smart plans, verify, read-back, records; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.modulekit import boron_set, build_module, write_all
from trayline.core.manifest import ManifestEntry
from trayline.core.skus import get_sku
from trayline.firmware.bundle import BundleError, create_bundle, get_bundle
from trayline.firmware.flashing import (
    PENDING,
    SKIP,
    WRITE,
    FlashFailed,
    flash_bundle,
    plan_flash,
    platform_problem,
    readback_problems,
)
from trayline.programmers.base import ModuleOnDevice
from trayline.store.db import Store
from trayline.store.flash_records import flash_records_for_device, latest_flash

from .fakeprog import FakeProgrammer


@pytest.fixture(autouse=True)
def _bundles_beside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAYLINE_BUNDLE_DIR", str(tmp_path / "bundles"))


def _bundle(store: Store, tmp_path: Path, name: str, *, user_version: int = 6) -> str:
    modules = boron_set()
    modules["user.bin"] = build_module(
        platform=13,
        function=5,
        index=2,
        version=user_version,
        start=0xB4000,
        dep=(4, 1, 4005),
        product=(13, 3),
        body=4096,
        seed=user_version,
    )
    files = write_all(tmp_path / name, modules)
    create_bundle(store, name=name, sku=get_sku("BRN404X"), files=files)
    return name


def test_first_flash_writes_all_then_nothing_then_only_the_user_part(
    store: Store, tmp_path: Path
) -> None:
    prog = FakeProgrammer()
    first = flash_bundle(store, prog, _bundle(store, tmp_path, "prod"), role="production")
    written = [m["function"] for m in first.written]
    assert written == ["bootloader", "radio stack", "system part", "user part"]
    assert first.verified and not first.skipped
    assert prog.resets == 1

    again = flash_bundle(store, prog, "prod")
    assert again.written == [] and len(again.skipped) == 4 and again.bytes_written == 0

    changed = flash_bundle(store, prog, _bundle(store, tmp_path, "prod-v7", user_version=7))
    assert [(m["function"], m["version"]) for m in changed.written] == [("user part", 7)]
    assert changed.bytes_written == len(boron_set()["user.bin"])
    assert changed.bytes_written < first.bytes_written * 0.15

    records = flash_records_for_device(store, prog.device_id)
    assert [r.bundle_name for r in records] == ["prod-v7", "prod", "prod"]
    assert all(r.status == "done" and r.verified for r in records)
    user = next(m for m in records[0].modules if m["function"] == "user part")
    assert user["done"] and user["action"] == WRITE


def test_full_rewrites_everything(store: Store, tmp_path: Path) -> None:
    prog = FakeProgrammer()
    name = _bundle(store, tmp_path, "prod")
    flash_bundle(store, prog, name)
    full = flash_bundle(store, prog, name, full=True)
    assert len(full.written) == 4 and full.skipped == []


def test_bit_flipped_before_verify_fails_and_is_recorded(store: Store, tmp_path: Path) -> None:
    prog = FakeProgrammer(corrupt_next_write="before-verify")
    with pytest.raises(FlashFailed, match="read-back differs") as caught:
        flash_bundle(store, prog, _bundle(store, tmp_path, "prod"), role="production")
    assert caught.value.record is not None and caught.value.record.status == "failed"
    assert latest_flash(store, prog.device_id) is None  # no *done* record: the unit is not flashed
    failed = latest_flash(store, prog.device_id, status="failed")
    assert (
        failed is not None and not failed.verified and "read-back differs" in (failed.error or "")
    )


def test_module_refused_at_reset_fails_the_readback(store: Store, tmp_path: Path) -> None:
    prog = FakeProgrammer(erase_on_reset=0xB4000)
    with pytest.raises(FlashFailed, match="user part 2 v6: not found on the device after reset"):
        flash_bundle(store, prog, _bundle(store, tmp_path, "prod"))
    failed = latest_flash(store, prog.device_id, status="failed")
    assert failed is not None and "after reset" in (failed.error or "")


def test_damage_found_by_the_next_flash_is_rewritten(store: Store, tmp_path: Path) -> None:
    prog = FakeProgrammer(corrupt_next_write="after-verify")  # a cell that decays later
    flash_bundle(store, prog, _bundle(store, tmp_path, "prod"))
    mended = flash_bundle(store, prog, "prod")
    assert [m["function"] for m in mended.written] == ["bootloader"]
    assert "damaged" in mended.written[0]["reason"]


def test_wrong_platform_is_refused_before_any_write(store: Store, tmp_path: Path) -> None:
    prog = FakeProgrammer()
    bsom_boot = build_module(
        platform=23, function=2, index=0, version=1101, start=0xF4000, prefix_offset=0x200
    )
    prog.flash[0xF4000 : 0xF4000 + len(bsom_boot)] = bsom_boot
    with pytest.raises(FlashFailed, match=r"bsom \(23\).*nothing written"):
        flash_bundle(store, prog, _bundle(store, tmp_path, "prod"))
    assert prog.writes == []
    assert flash_records_for_device(store, prog.device_id) == []


def _entry(function: int, index: int, version: int, position: int) -> ManifestEntry:
    return ManifestEntry(
        position=position,
        file_name=f"m{position}.bin",
        file_sha256="0" * 64,
        size=100,
        address=0x1000 * (position + 1),
        skip=0,
        platform_id=26,
        function=function,
        index=index,
        version=version,
        module_sha256="a" * 64,
        flags=0,
    )


def _on(function: int, index: int, version: int, *, valid: bool = True) -> ModuleOnDevice:
    return ModuleOnDevice(function, index, version, 0, 100, 26, "a" * 64, valid)


def test_plan_ncp_is_pending_without_usb_and_after_5_6() -> None:
    entries = [_entry(4, 1, 3000, 0), _entry(7, 0, 7, 1)]
    swd = plan_flash(entries, [], can_update_ncp=False, system_version=3000)
    assert [p.action for p in swd] == [WRITE, PENDING]
    usb = plan_flash(entries, [], can_update_ncp=True, system_version=3000)
    assert [p.action for p in usb] == [WRITE, WRITE]
    new_os = plan_flash(entries, [], can_update_ncp=True, system_version=5600)
    assert new_os[1].action == PENDING and "5.6.0" in new_os[1].reason


def test_plan_damaged_module_is_rewritten_and_unreadable_device_gets_everything() -> None:
    entries = [_entry(4, 1, 3000, 0), _entry(5, 2, 6, 1)]
    plan = plan_flash(entries, [_on(4, 1, 3000), _on(5, 2, 6, valid=False)])
    assert [p.action for p in plan] == [SKIP, WRITE]
    assert "damaged" in plan[1].reason
    blind = plan_flash(entries, None)
    assert [p.action for p in blind] == [WRITE, WRITE]


def test_readback_and_platform_checks_name_the_module() -> None:
    entries = [_entry(4, 1, 3000, 0), _entry(5, 2, 6, 1)]
    assert readback_problems(entries, [_on(4, 1, 3000), _on(5, 2, 6)]) == []
    problems = readback_problems(entries, [_on(4, 1, 2999)])
    assert problems == [
        "system part 1 v3000: the device reports version 2999",
        "user part 2 v6: not found on the device after reset",
    ]
    assert platform_problem(26, [_on(4, 1, 3000)]) is None
    other = ModuleOnDevice(4, 1, 3000, 0, 1, 13)
    assert "boron (13)" in (platform_problem(26, [other]) or "")


def test_a_bundle_file_changed_after_first_use_is_refused(store: Store, tmp_path: Path) -> None:
    prog = FakeProgrammer()
    name = _bundle(store, tmp_path, "prod")
    flash_bundle(store, prog, name)
    info = get_bundle(store, name)
    blob = next(p for p in (tmp_path / "bundles").rglob(info.entries[-1].file_sha256))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    writes = len(prog.writes)
    with pytest.raises(BundleError, match="changed on disk"):
        flash_bundle(store, prog, name)
    assert len(prog.writes) == writes

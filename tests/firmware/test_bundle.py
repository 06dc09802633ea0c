"""Bundle checks, ordering, storage and refusal at use; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from trayline.core.modules import parse_module
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.firmware.bundle import (
    BundleError,
    BundleRefused,
    bundle_dir,
    create_bundle,
    get_bundle,
    list_bundles,
    load_bundle,
    verify_bundle,
)
from trayline.firmware.checks import baseline_for, check_bundle, flash_order
from trayline.firmware.hexfile import Placement
from trayline.store.db import Store

from .modulekit import boron_set, build_module, write_all

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"


def placement(name: str, data: bytes) -> Placement:
    return Placement(name, parse_module(data), data)


def fixture(name: str) -> Path:
    return FIXTURES / name


@pytest.fixture(autouse=True)
def _bundles_beside_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # PostgreSQL has no folder of its own: keep every run's files in its tmp_path.
    monkeypatch.setenv("TRAYLINE_BUNDLE_DIR", str(tmp_path / "bundles"))


def test_create_orders_stores_and_loads(store: Store, tmp_path: Path) -> None:
    files = write_all(tmp_path / "in", boron_set())
    info = create_bundle(
        store, name="brn-prod", sku=get_sku("BRN404X"), files=list(reversed(files))
    )
    assert [e.file_name for e in info.entries] == [
        "bootloader.bin",
        "softdevice.bin",
        "system-part1.bin",
        "user.bin",
    ]
    assert info.device_os == "4.0.1" and info.system_version == 4005
    assert len(info.digest) == 64
    root = bundle_dir(store.url)
    for entry in info.entries:
        blob = root / "sha256" / entry.file_sha256[:2] / entry.file_sha256
        assert blob.read_bytes() == (tmp_path / "in" / entry.file_name).read_bytes()
    loaded = load_bundle(store, "brn-prod")
    assert [p.name for p in loaded.placements] == [e.file_name for e in info.entries]
    assert [b.name for b in list_bundles(store)] == ["brn-prod"]
    assert get_bundle(store, "brn-prod").entries == info.entries


def test_sqlite_bundles_live_beside_the_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TRAYLINE_BUNDLE_DIR")
    assert bundle_dir(f"sqlite:///{tmp_path}/line/x.db") == tmp_path / "line" / "trayline-bundles"


def test_changed_file_on_disk_is_refused_at_use(store: Store, tmp_path: Path) -> None:
    files = write_all(tmp_path / "in", boron_set())
    info = create_bundle(store, name="b", sku=get_sku("BRN404X"), files=files)
    user = next(e for e in info.entries if e.file_name == "user.bin")
    blob = bundle_dir(store.url) / "sha256" / user.file_sha256[:2] / user.file_sha256
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"user\.bin: stored file .* changed on disk"):
        load_bundle(store, "b")
    assert len(verify_bundle(store, "b")) == 1
    blob.unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(store, "b")


def test_wrong_platform_is_refused(store: Store) -> None:
    with pytest.raises(BundleRefused) as info:
        create_bundle(
            store,
            name="x",
            sku=get_sku("BRN404"),
            files=[fixture("tracker-tinker@5.3.1.bin")],
            baseline_device_os=SemVer.parse("5.8.0"),
        )
    assert any(
        "tracker-tinker@5.3.1.bin: built for platform 26 (tracker)" in p
        for p in info.value.problems
    )
    assert list_bundles(store) == []


def test_unmet_dependency_is_refused(store: Store) -> None:
    with pytest.raises(BundleRefused) as info:
        create_bundle(
            store,
            name="x",
            sku=get_sku("T404"),
            files=[
                fixture("tracker-system-part1@3.1.0-alpha.2.bin"),
                fixture("tracker-tinker@5.3.1.bin"),
            ],
            baseline_device_os=SemVer.parse("3.3.1"),
        )
    assert info.value.problems == [
        "tracker-tinker@5.3.1.bin: needs system part 1 >= 5301 (Device OS 5.3.1), but "
        "tracker-system-part1@3.1.0-alpha.2.bin provides version 3101"
    ]


def test_missing_dependency_without_baseline() -> None:
    mods = boron_set()
    result = check_bundle([placement("user.bin", mods["user.bin"])], get_sku("BRN404X"))
    assert any("neither in the bundle nor on the units" in p for p in result.problems)
    with_baseline = check_bundle(
        [placement("user.bin", mods["user.bin"])],
        get_sku("BRN404X"),
        baseline=baseline_for(13, SemVer.parse("4.0.1")),
    )
    assert with_baseline.ok, with_baseline.problems


def test_device_os_below_sku_minimum_is_refused(store: Store, tmp_path: Path) -> None:
    files = write_all(tmp_path / "in", boron_set(release_system=3005, bootloader=1005))
    with pytest.raises(BundleRefused) as info:
        create_bundle(store, name="old", sku=get_sku("BRN404X"), files=files)
    assert info.value.problems == [
        "BRN404X needs Device OS 4.0.1 or later; this bundle carries system module 3005 "
        "(Device OS 3.0.0)"
    ]
    # The same files are fine for a SKU whose minimum is older.
    create_bundle(store, name="old", sku=get_sku("BRN404"), files=files)


def test_user_part_at_wrong_address_is_refused(store: Store, tmp_path: Path) -> None:
    mods = boron_set()
    mods["user.bin"] = build_module(
        platform=13, function=5, index=1, version=6, start=0xD4000, dep=(4, 1, 4005)
    )
    files = write_all(tmp_path / "in", mods)
    with pytest.raises(BundleRefused) as info:
        create_bundle(store, name="x", sku=get_sku("BRN404X"), files=files)
    (problem,) = info.value.problems
    assert problem.startswith("user.bin: user part at 0x000d4000 needs system part >= 4005")
    assert "0x000b4000" in problem


def test_damaged_file_is_refused() -> None:
    data = bytearray(boron_set()["system-part1.bin"])
    data[5000] ^= 1
    result = check_bundle([placement("sys.bin", bytes(data))], get_sku("BRN404X"))
    assert any(p.startswith("sys.bin: CRC-32 mismatch") for p in result.problems)


def test_argon_softdevice_allowed_on_other_gen3_platforms() -> None:
    """Spec §1.7: Particle's Boron restore set uses a SoftDevice tagged platform 12."""
    sd = fixture("argon-softdevice-6.1.1.bin").read_bytes()
    result = check_bundle([placement("sd.bin", sd)], get_sku("T404"), baseline=None)
    assert not any("platform" in p for p in result.problems)
    assert not check_bundle([placement("sd.bin", sd)], get_sku("E404")).ok


def test_electron_file_name_trap_order() -> None:
    """Files part1, part2, part3 are module indexes 3, 1, 2 and must be flashed in that order."""
    v = 2302
    part1 = build_module(
        platform=10, function=4, index=3, version=v, start=0x08060000, dep=(4, 2, 110)
    )
    part2 = build_module(
        platform=10,
        function=4,
        index=1,
        version=v,
        start=0x08020000,
        prefix_offset=0x184,
        dep=(4, 3, v),
    )
    part3 = build_module(
        platform=10,
        function=4,
        index=2,
        version=v,
        start=0x08040000,
        prefix_offset=0x184,
        dep=(4, 1, v),
        dep2=(2, 0, 1003),
    )
    user = build_module(
        platform=10, function=5, index=1, version=6, start=0x08080000, dep=(4, 2, v)
    )
    boot = build_module(
        platform=10, function=2, index=0, version=1006, start=0x08000000, prefix_offset=0x184
    )
    given = [
        placement("user.bin", user),
        placement("system-part3.bin", part3),
        placement("system-part2.bin", part2),
        placement("bootloader.bin", boot),
        placement("system-part1.bin", part1),
    ]
    order = [p.name for p in flash_order(given)]
    assert order == [
        "bootloader.bin",
        "system-part1.bin",
        "system-part2.bin",
        "system-part3.bin",
        "user.bin",
    ]
    result = check_bundle(given, get_sku("E404"))
    assert result.ok, result.problems


def test_test_and_production_must_share_device_os(store: Store, tmp_path: Path) -> None:
    prod = write_all(tmp_path / "prod", boron_set())
    create_bundle(store, name="prod", sku=get_sku("BRN404X"), files=prod, role="production")
    newer = write_all(tmp_path / "test", boron_set(release_system=5800, bootloader=2600))
    with pytest.raises(BundleRefused) as info:
        create_bundle(
            store, name="t1", sku=get_sku("BRN404X"), files=newer, role="test", strict=True
        )
    assert "test firmware must run on the production Device OS" in info.value.problems[0]
    warned = create_bundle(store, name="t2", sku=get_sku("BRN404X"), files=newer, role="test")
    assert "Device OS 5.8.0" in warned.warnings[0] and "Device OS 4.0.1" in warned.warnings[0]
    same = create_bundle(store, name="t3", sku=get_sku("BRN404X"), files=prod, role="test")
    assert same.warnings == ()


def test_duplicate_name_and_unreadable_file(store: Store, tmp_path: Path) -> None:
    files = write_all(tmp_path / "in", boron_set())
    create_bundle(store, name="a", sku=get_sku("BRN404X"), files=files)
    with pytest.raises(BundleError, match="already exists"):
        create_bundle(store, name="a", sku=get_sku("BRN404X"), files=files)
    with pytest.raises(BundleError, match=r"nope\.bin: cannot read"):
        create_bundle(store, name="b", sku=get_sku("BRN404X"), files=[tmp_path / "nope.bin"])
    with pytest.raises(BundleError, match=r"emptybin\.bin: the file is empty"):
        create_bundle(store, name="b", sku=get_sku("BRN404X"), files=[fixture("emptybin.bin")])


def test_overlapping_modules_are_refused() -> None:
    """A large <= 6.1.x system part reaches into the 3.1.0+ user part at 0xB4000."""
    modules = boron_set()
    modules["system-part1.bin"] = build_module(
        platform=13,
        function=4,
        index=1,
        version=4005,
        start=0x30000,
        prefix_offset=0x200,
        dep=(2, 0, 1101),
        dep2=(8, 0, 202),
        body=600_000,
    )
    result = check_bundle(
        [placement(name, data) for name, data in modules.items()], get_sku("BRN404X")
    )
    assert any(
        p.startswith("user.bin: starts at 0x000b4000, inside system-part1.bin")
        for p in result.problems
    ), result.problems

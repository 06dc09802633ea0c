"""store.bundles: manifests in and out of the store, and a listing whose query count is fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from trayline.core.manifest import BundleInfo, ManifestEntry, bundle_digest
from trayline.store import bundles
from trayline.store.db import Store


def _info(name: str, *, role: str = "production", modules: int = 3) -> BundleInfo:
    entries = tuple(
        ManifestEntry(
            position=i,
            file_name=f"m{i}.bin",
            file_sha256=f"{i:064x}",
            size=1000 + i,
            address=0x30000 + 0x1000 * i,
            skip=0,
            platform_id=13,
            function=4,
            index=i,
            version=5000 + i,
            module_sha256=f"{i + 7:064x}",
            flags=0,
        )
        for i in range(modules)
    )
    return BundleInfo(
        name=name,
        sku="BRN404",
        line="line-a",
        role=role,
        platform_id=13,
        system_version=5000,
        device_os="4.0.0",
        baseline_device_os=None,
        digest=bundle_digest(entries),
        created_at=datetime.now(UTC),
        entries=entries,
        warnings=("a warning",),
    )


def test_round_trip(store: Store) -> None:
    stored = bundles.add_bundle(store, _info("prod-1"))
    found = bundles.find_bundle(store, "prod-1")
    assert found == stored
    assert found is not None and len(found.entries) == 3
    assert [e.address for e in found.entries] == [0x30000, 0x31000, 0x32000]
    assert found.warnings == ("a warning",)
    assert bundles.find_bundle(store, "nope") is None


def test_latest_bundle_of_a_role(store: Store) -> None:
    bundles.add_bundle(store, _info("t1", role="test"))
    bundles.add_bundle(store, _info("t2", role="test"))
    bundles.add_bundle(store, _info("p1"))
    latest = bundles.latest_bundle(store, "line-a", "test")
    assert latest is not None and latest.name == "t2"
    assert bundles.latest_bundle(store, "line-b", "test") is None
    assert bundles.bundle_names(store) == ["t1", "t2", "p1"]


def test_listing_loads_modules_eagerly(store: Store) -> None:
    """Two queries whatever the number of bundles, not one more per bundle (issue 8)."""
    for n in range(12):
        bundles.add_bundle(store, _info(f"b{n}", modules=1 + n % 4))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        listed = bundles.list_bundles(store)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert [b.name for b in listed] == [f"b{n}" for n in range(12)]
    assert [len(b.entries) for b in listed] == [1 + n % 4 for n in range(12)]
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects

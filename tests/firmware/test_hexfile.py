"""Hex round trip on a bundle built from the fixtures, decoded by intelhex; bin-plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from trayline.core.modules import parse_module
from trayline.core.platforms import GEN3_UICR_WORDS
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.firmware.bundle import create_bundle, load_bundle
from trayline.firmware.hexfile import HexError, Placement, bin_plan, build_hex, read_hex
from trayline.store.db import Store, open_store

from .modulekit import build_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"


@pytest.fixture
def tracker_bundle(tmp_path: Path) -> tuple[Store, str]:
    """Tracker bootloader 5.6.0, the Argon-tagged SoftDevice, system part 3.1.0-alpha.2 (real
    fixtures) and a user part built against that system part (the fixtures have none)."""
    user = tmp_path / "app.bin"
    user.write_bytes(
        build_module(
            platform=26,
            function=5,
            index=2,
            version=6,
            start=0xB4000,
            dep=(4, 1, 3101),
            body=20000,
            product=(26, 1),
        )
    )
    store = open_store(f"sqlite:///{tmp_path / 'line.db'}")
    create_bundle(
        store,
        name="tracker-prod",
        sku=get_sku("T404"),
        files=[
            user,
            FIXTURES / "tracker-system-part1@3.1.0-alpha.2.bin",
            FIXTURES / "argon-softdevice-6.1.1.bin",
            FIXTURES / "tracker-bootloader@5.6.0.bin",
        ],
        baseline_device_os=SemVer.parse("3.3.1"),  # the units' ESP32 NCP 0.0.7
    )
    return store, "tracker-prod"


def test_hex_round_trip(tracker_bundle: tuple[Store, str], tmp_path: Path) -> None:
    store, name = tracker_bundle
    loaded = load_bundle(store, name)
    image = build_hex(loaded.placements, loaded.info.platform_id)
    out = tmp_path / "out.hex"
    out.write_text(image.encode())
    ih = read_hex(out)
    written = 0
    for p in loaded.placements:
        expected = p.image()
        assert ih.tobinstr(start=p.address, size=len(expected)) == expected, p.name
        written += len(expected)
    for address, value in GEN3_UICR_WORDS.items():
        assert ih.tobinstr(start=address, size=4) == value.to_bytes(4, "little")
    assert len(ih) == written + 4 * len(GEN3_UICR_WORDS)  # nothing else in the file
    # The SoftDevice's 24-byte prefix is dropped: 0x1000 holds what follows it.
    sd = (FIXTURES / "argon-softdevice-6.1.1.bin").read_bytes()
    assert ih.tobinstr(start=0x1000, size=16) == sd[24:40]


def test_hex_layout_matches_restore_images(tracker_bundle: tuple[Store, str]) -> None:
    """UICR first, user part last and opened by its own ELA record (the Hex Generator's cut)."""
    store, name = tracker_bundle
    loaded = load_bundle(store, name)
    text = build_hex(loaded.placements, loaded.info.platform_id).encode()
    lines = text.splitlines()
    assert lines[0] == ":020000041000EA"  # ELA 0x1000 -> UICR
    assert lines[-1] == ":00000001FF"
    ela_b = lines.index(":02000004000BEF")
    assert lines[ela_b + 1].startswith(":104000")  # data at 0x000B4000
    tail = lines[ela_b + 1 : -1]
    assert all(line[7:9] in ("00", "04") for line in tail)
    assert ":02000004000FEB" not in tail  # the bootloader (0xF4000) came before


def test_bin_plan(tracker_bundle: tuple[Store, str]) -> None:
    store, name = tracker_bundle
    loaded = load_bundle(store, name)
    plan = bin_plan(loaded.placements, loaded.info.platform_id)
    assert [e["address"] for e in plan] == [0xF4000, 0x1000, 0x30000, 0xB4000]
    sd = plan[1]
    assert sd["skip"] == 24 and sd["erase_start"] == 0x1000
    assert sd["erase_end"] % 0x1000 == 0 and sd["erase_end"] >= 0x1000 + sd["size"]


def test_overlap_is_refused() -> None:
    a = build_module(platform=13, function=4, index=1, version=4005, start=0x30000, body=8192)
    b = build_module(platform=13, function=5, index=2, version=6, start=0x31000, body=64)
    with pytest.raises(HexError, match=r"a\.bin .* overlaps b\.bin"):
        build_hex(
            [Placement("a.bin", parse_module(a), a), Placement("b.bin", parse_module(b), b)], 13
        )


def test_records_cross_64k_boundaries() -> None:
    data = build_module(platform=13, function=4, index=1, version=4005, start=0x3FFF0, body=64)
    ih_text = build_hex([Placement("x.bin", parse_module(data), data)], 13, uicr=False).encode()
    assert ":020000040004F6" in ih_text.splitlines()

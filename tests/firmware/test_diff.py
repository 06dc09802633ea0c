"""modules_to_write: what a device still needs from a bundle."""

from __future__ import annotations

from trayline.core.manifest import ManifestEntry
from trayline.firmware.diff import ReportedModule, modules_to_write


def entry(pos: int, function: int, index: int, version: int, sha: str) -> ManifestEntry:
    return ManifestEntry(
        pos, f"m{pos}.bin", "f" * 64, 100, 0x1000 * pos, 0, 13, function, index, version, sha, 0
    )


BUNDLE = [
    entry(0, 2, 0, 1101, "a" * 64),
    entry(1, 4, 1, 4005, "b" * 64),
    entry(2, 5, 2, 6, "c" * 64),
]


def test_only_user_part_differs() -> None:
    reported = [
        ReportedModule(2, 0, 1101, "a" * 64),
        ReportedModule(4, 1, 4005, "B" * 64),  # case does not matter
        ReportedModule(5, 2, 6, "d" * 64),  # test firmware, same version number
    ]
    todo = modules_to_write(BUNDLE, reported)
    assert [t.entry.file_name for t in todo] == ["m2.bin"]
    assert "SHA-256 differs" in todo[0].reason


def test_missing_and_other_versions_in_bundle_order() -> None:
    reported = [ReportedModule(5, 2, 6), ReportedModule(4, 1, 6101)]
    todo = modules_to_write(BUNDLE, reported)
    assert [(t.entry.file_name, t.reason) for t in todo] == [
        ("m0.bin", "not on the device"),
        ("m1.bin", "device has version 6101, bundle 4005"),
    ]


def test_device_already_runs_bundle() -> None:
    reported = [ReportedModule(e.function, e.index, e.version, e.module_sha256) for e in BUNDLE]
    assert modules_to_write(BUNDLE, reported) == []

"""``firmware inspect`` and the bundle tables read well in 80 columns; ``--wide`` shows the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from trayline.core.manifest import BundleInfo, ManifestEntry, bundle_digest
from trayline.store import bundles
from trayline.store.db import open_store

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "particle-binaries"
FILES = sorted(str(p) for p in FIXTURES.glob("*.bin"))


def _trayline(*args: str, db: str | None = None, ok: tuple[int, ...] = (0,)) -> str:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    if db:
        env["TRAYLINE_DATABASE_URL"] = db
    done = subprocess.run(
        [sys.executable, "-m", "trayline", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode in ok, done.stderr
    return done.stdout


def test_inspect_fits_80_columns_and_keeps_versions_whole() -> None:
    text = _trayline("firmware", "inspect", *FILES, ok=(0, 1))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    assert "address" not in lines[1], "the address is a --wide column"
    results = json.loads(_trayline("firmware", "inspect", "--json", *FILES, ok=(0, 1)))
    at = 2  # rows follow the title and the header, in the order the files were given
    for r in results:
        head = Path(r["file"]).name[:16]
        found = next((n for n in range(at, len(lines)) if lines[n].startswith(head)), None)
        assert found is not None, f"{head} missing:\n{text}"
        at = found + 1
        if "error" not in r:
            row = lines[found]
            assert f" {r['platform_name']} " in row and f" {r['module_version']} " in row


def test_inspect_wide_adds_path_address_and_dependencies() -> None:
    text = _trayline("firmware", "inspect", "--wide", *FILES, ok=(0, 1))
    assert max(len(line) for line in text.splitlines()) > 80
    header = text.splitlines()[1].split()
    assert "address" in header and "deps" in header
    assert str(FIXTURES / "080_system-part1-xenon.bin").replace(str(ROOT) + "/", "") in text


def test_bundle_list_and_show_fit_80_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    entries = tuple(
        ManifestEntry(
            i,
            f"tracker-system-part{i}@6.1.1.bin",
            f"{i:064x}",
            400_000 + i,
            0x30000 + 0x80000 * i,
            0,
            26,
            4,
            i,
            6101,
            f"{i + 9:064x}",
            0,
        )
        for i in range(1, 4)
    )
    info = BundleInfo(
        name="tracker-one-production-6.1.1-with-a-long-name",
        sku="ONE404MEA",
        line="one",
        role="production",
        platform_id=26,
        system_version=6101,
        device_os="6.1.1",
        baseline_device_os=None,
        digest=bundle_digest(entries),
        created_at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        entries=entries,
    )
    with open_store(url) as store:
        bundles.add_bundle(store, info)
    listed = _trayline("firmware", "bundle", "list", db=url)
    assert max(len(line) for line in listed.splitlines()) <= 80, listed
    assert "2026-11-25 09:30" in listed and info.digest[:12] in listed
    assert info.digest not in listed
    assert info.digest in _trayline("firmware", "bundle", "list", "--wide", db=url)
    shown = _trayline("firmware", "bundle", "show", info.name, db=url)
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    for e in entries:
        assert f"{e.address:#010x}" in shown
    assert entries[0].file_sha256 in _trayline(
        "firmware", "bundle", "show", info.name, "--wide", db=url
    )


def test_the_docs_example_is_this_output() -> None:
    docs = (ROOT / "docs" / "firmware.md").read_text(encoding="utf-8")
    example = docs.split("prints one row per file", 1)[1].split("```text\n", 1)[1]
    example = example.split("```", 1)[0]
    files = [
        "tests/fixtures/particle-binaries/tracker-system-part1@3.1.0-alpha.2.bin",
        "tests/fixtures/particle-binaries/tracker-tinker@5.3.1.bin",
    ]
    text = _trayline("firmware", "inspect", *files)
    assert [ln.rstrip() for ln in text.splitlines()] == example.rstrip("\n").splitlines()

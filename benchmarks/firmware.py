"""Benchmark: module inspection and full Gen 3 hex generation, against baselines in the same run.

Inspection is compared with Particle's own parser, ``binary-version-reader`` from the
npm registry, on the same files (every fixture module plus a 1 MB system part built in
the real format): medians per parse, each parser reading from memory. Hex generation
(bootloader, SoftDevice, system part, user part — real fixture files) is compared with
the ``intelhex`` package writing the same segments, since the reference parser does not
write hex files.

Targets (issue): a 1 MB module inspected in under 20 ms; the full hex in under 500 ms.

The npm package is installed on first run into ``benchmarks/.node/`` (gitignored). If
node or npm is missing or the install fails, trayline's figures are still printed and
the baseline is reported as skipped.

Run: .venv/bin/python benchmarks/firmware.py
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from intelhex import IntelHex

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO / "tests" / "fixtures" / "particle-binaries"
NODE_DIR = HERE / ".node"
REFERENCE = "binary-version-reader@3.1.3"
REPEATS = 30

sys.path.insert(0, str(REPO / "tests"))
from firmware.modulekit import build_module  # noqa: E402
from trayline.core.modules import ModuleError, parse_module  # noqa: E402
from trayline.firmware.hexfile import Placement, build_hex  # noqa: E402

HEX_SET = (
    "tracker-bootloader@5.6.0.bin",
    "argon-softdevice-6.1.1.bin",
    "tracker-system-part1@3.1.0-alpha.2.bin",
    "tracker-tinker@5.3.1.bin",
)


def median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def parse_or_error(data: bytes) -> None:
    with contextlib.suppress(ModuleError):
        parse_module(data)


def ensure_reference() -> str | None:
    """Install the reference parser if needed; return why it is unavailable, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if (NODE_DIR / "node_modules" / "binary-version-reader").is_dir():
        return None
    if shutil.which("npm") is None:
        return "npm is not installed"
    NODE_DIR.mkdir(exist_ok=True)
    package = NODE_DIR / "package.json"
    if not package.exists():
        package.write_text('{"name": "trayline-bench-node", "private": true}\n')
    try:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", REFERENCE],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"npm install {REFERENCE} failed ({exc})"
    return None


def run_reference(files: list[Path]) -> dict[str, object] | str:
    problem = ensure_reference()
    if problem:
        return problem
    try:
        done = subprocess.run(
            ["node", str(HERE / "firmware_reference.js"), str(REPEATS), *map(str, files)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"node run failed ({exc})"
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "system-part1-1MB.bin"
        big.write_bytes(
            build_module(
                platform=13,
                function=4,
                index=1,
                version=6101,
                start=0x30000,
                prefix_offset=0x200,
                body=1024 * 1024 - 0x200 - 68,
            )
        )
        files = [*sorted(p for p in FIXTURES.glob("*.bin")), big]
        blobs = {f: f.read_bytes() for f in files}
        ours = {f: median_ms(lambda d=blobs[f]: parse_or_error(d)) for f in files}
        reference = run_reference(files)

    print(f"Module inspection: median ms per parse over {REPEATS} runs, {len(files)} files")
    ref_files: dict[str, dict[str, object]] = {}
    if isinstance(reference, str):
        print(f"  baseline skipped: {reference}")
    else:
        ref_files = reference["files"]  # type: ignore[assignment]
        print(f"  baseline: binary-version-reader {reference['version']} (node, same files)")
    total_ours = sum(ours.values())
    print(f"  {'file':44} {'bytes':>8} {'trayline':>9} {'reference':>10} {'ratio':>7}")
    for f in files:
        ref = ref_files.get(str(f), {})
        ref_ms = ref.get("ms")
        ratio = f"{float(ref_ms) / ours[f]:6.1f}x" if isinstance(ref_ms, int | float) else "-"
        shown_ref = f"{float(ref_ms):9.3f}" if isinstance(ref_ms, int | float) else "-"
        print(f"  {f.name[:44]:44} {len(blobs[f]):8d} {ours[f]:9.3f} {shown_ref:>10} {ratio:>7}")
    print(f"  all files, one pass: trayline {total_ours:.2f} ms", end="")
    if ref_files:
        total_ref = sum(float(v["ms"]) for v in ref_files.values())  # type: ignore[arg-type]
        print(f", reference {total_ref:.2f} ms ({total_ref / total_ours:.1f}x)")
    else:
        print()
    big_ms = ours[files[-1]]
    verdict = "PASS" if big_ms < 20 else "FAIL"
    print(f"  1 MB module: {big_ms:.3f} ms (target < 20 ms: {verdict})")

    placements = [
        Placement(n, parse_module((FIXTURES / n).read_bytes()), (FIXTURES / n).read_bytes())
        for n in HEX_SET
    ]

    def ours_hex() -> str:
        loaded = [
            Placement(p.name, parse_module(p.data), p.data) for p in placements
        ]  # parse included
        return build_hex(loaded, 26).encode()

    def intelhex_baseline() -> str:
        ih = IntelHex()
        for p in placements:
            ih.puts(p.address, p.image())
        buffer = io.StringIO()
        ih.write_hex_file(buffer)
        return buffer.getvalue()

    size = sum(len(p.image()) for p in placements)
    hex_ms = median_ms(ours_hex, 10)
    base_ms = median_ms(intelhex_baseline, 10)
    verdict = "PASS" if hex_ms < 500 else "FAIL"
    print(f"Full Gen 3 hex ({len(placements)} modules, {size} bytes): median of 10")
    print(f"  trayline (parse + layout + encode): {hex_ms:.1f} ms (target < 500 ms: {verdict})")
    print(f"  intelhex write_hex_file, same segments: {base_ms:.1f} ms ({base_ms / hex_ms:.1f}x)")


if __name__ == "__main__":
    main()

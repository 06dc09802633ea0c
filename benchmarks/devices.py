"""Benchmark: flashing virtual devices — trayline's own cost against the device's, same run.

Three figures, each against a baseline measured in the same run:

1. **Overhead per flash.** Every flash of a tray of virtual Borons runs with a
   time scale (real seconds per simulated device second). The time spent inside
   the virtual device's debug port (opening it, connect, read, program, reset:
   the simulated wire and chip, sleeping ``simulated × scale``, plus the tray's
   file I/O that stands in for the silicon, saved without fsync as in every
   benchmark of trayline's own cost) is the device's; everything else of the
   wall time is trayline's own: planning, scanning the bytes read, hashing, the
   store's records — two of them flushed to disk (the intent before the first
   byte, the result before the verdict), so this disk's commit latency is
   printed beside it. Target ≤ 10 ms per unit. The simulated device time is
   printed beside it as the baseline.
2. **Smart against --full.** Bytes written when only the user part changed,
   against rewriting every module. Target ≤ 15 %.
3. **A full Gen 3 image against the timing model's floor.** The simulated time a
   ``--full`` flash of a ~1 MB image cost on the default link (Particle Debugger
   with OpenOCD), against the least the model allows for it: connect, erase
   every page, write every byte, read every written byte back once (verify is
   not optional on a line), reset. Target ≤ 1.05×.

Run: .venv/bin/python benchmarks/devices.py [--units 20] [--scale 0.001]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from commit_latency import commit_latency  # noqa: E402

from firmware.modulekit import boron_set, build_module, write_all  # noqa: E402
from trayline.core.platforms import erase_range  # noqa: E402
from trayline.core.skus import get_sku  # noqa: E402
from trayline.firmware.bundle import create_bundle, load_bundle  # noqa: E402
from trayline.firmware.flashing import FlashReport, flash_bundle  # noqa: E402
from trayline.programmers.registry import open_programmer  # noqa: E402
from trayline.store.db import Store, open_store  # noqa: E402
from trayline.virtual.swd import DebugPort  # noqa: E402
from trayline.virtual.timing import DEFAULT_LINK, TimingModel  # noqa: E402
from trayline.virtual.tray import Tray  # noqa: E402

SKU = "BRN404X"


def _user(version: int) -> bytes:
    return build_module(
        platform=13,
        function=5,
        index=2,
        version=version,
        start=0xB4000,
        dep=(4, 1, 4005),
        product=(13, 3),
        body=60_000,
        seed=version,
    )


def _bundle(store: Store, root: Path, name: str, *, user: int, system_body: int) -> None:
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
        body=system_body,
    )
    modules["user.bin"] = _user(user)
    create_bundle(store, name=name, sku=get_sku(SKU), files=write_all(root / name, modules))


class _PortTimer:
    """Adds up the real time spent inside the virtual debug port, opening included.

    Every :class:`DebugPort` method that stands in for the wire and the silicon —
    construction (it loads the device's files), connect, read, program, reset, mass
    erase — is wrapped on the class while the timer is active, so the connect that
    ``open_programmer`` makes before returning counts as the device's, as the
    module docstring defines it.
    """

    OPERATIONS = ("__init__", "connect", "read", "program", "reset", "mass_erase")

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0
        self._saved: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> _PortTimer:
        for name in self.OPERATIONS:
            self._saved[name] = getattr(DebugPort, name)
            setattr(DebugPort, name, self._timed(self._saved[name]))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self._saved.items():
            setattr(DebugPort, name, fn)

    def _timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - t0

        return run


def _flash(
    store: Store, tray: Path, device_id: str, bundle: str, scale: float, *, full: bool = False
) -> tuple[FlashReport, float, float]:
    """One flash; returns the report, trayline's own seconds and simulated device seconds.

    The tray does not fsync the images it saves (backend option ``sync=0``, as for
    every benchmark of trayline's own cost): a real device does not flush this
    machine's disk, and the simulator's flushes would queue the store's own.
    """
    options = {"tray": str(tray), "time_scale": repr(scale), "link": DEFAULT_LINK, "sync": "0"}
    with _PortTimer() as timer:
        t0 = time.perf_counter()
        with open_programmer(
            "virtual", device_id, slot="bench", platform_id=13, options=options
        ) as prog:
            report = flash_bundle(store, prog, bundle, full=full)
            simulated = float(prog.simulated_seconds)  # type: ignore[attr-defined]
        wall = time.perf_counter() - t0
    return report, wall - timer.seconds, simulated


def _floor(store: Store, bundle: str) -> float:
    """The timing model's least device time for writing and verifying every module."""
    model = TimingModel.for_link("nRF52840", DEFAULT_LINK)
    loaded = load_bundle(store, bundle)
    total = model.link.connect_s + model.link.reset_s
    for entry, placement in zip(loaded.info.entries, loaded.placements, strict=True):
        image = placement.image()
        span = erase_range(13, entry.address, entry.address + len(image))
        pages = 0 if span is None else (span[1] - span[0]) // 0x1000
        total += model.erase_seconds([0x1000] * pages)
        total += model.write_seconds(len(image)) + model.read_seconds(len(image))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=20, help="virtual devices (default 20)")
    parser.add_argument("--scale", type=float, default=0.001, help="time scale (default 0.001)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["TRAYLINE_BUNDLE_DIR"] = str(root / "bundles")
        store = open_store(f"sqlite:///{root / 'bench.db'}")
        tray = root / "tray"
        devices = Tray.create(tray, get_sku(SKU), args.units, seed=7).device_ids()
        _bundle(store, root, "v1", user=6, system_body=500_000)
        _bundle(store, root, "v2", user=7, system_body=500_000)

        # 1. overhead: the first flash of each unit (everything differs), then the user part.
        overheads_first, overheads_user, sims = [], [], []
        for device in devices:
            _, own, sim = _flash(store, tray, device, "v1", args.scale)
            overheads_first.append(own)
            _, own, sim = _flash(store, tray, device, "v2", args.scale)
            overheads_user.append(own)
            sims.append(sim)
        # 2. smart against full, on the same device and the same change.
        device = devices[0]
        _flash(store, tray, device, "v1", 0.0)
        smart, _, _ = _flash(store, tray, device, "v2", 0.0)
        _flash(store, tray, device, "v1", 0.0)
        full, _, _ = _flash(store, tray, device, "v2", 0.0, full=True)
        # 3. a full image against the floor.
        _, _, full_sim = _flash(store, tray, devices[1], "v1", 0.0, full=True)
        floor = _floor(store, "v1")
        store.dispose()
        flush = commit_latency(root)

    ms_first = statistics.median(overheads_first) * 1000
    ms_user = statistics.median(overheads_user) * 1000
    ratio = smart.bytes_written / full.bytes_written
    print(f"units: {args.units}, time scale {args.scale}, link {DEFAULT_LINK}")
    print(f"trayline's own time per flash, first flash (median): {ms_first:6.2f} ms")
    print(
        f"trayline's own time per flash, user part only (median): {ms_user:6.2f} ms   "
        f"target <= 10 ms; device time {statistics.median(sims):.1f} s simulated"
    )
    print(
        f"  of which two flushed commits (the intent before the first byte, the result before "
        f"the verdict): this disk flushes a commit in {flush * 1000:.1f} ms"
    )
    print(
        f"bytes written, user part changed: smart {smart.bytes_written:,} vs --full "
        f"{full.bytes_written:,} = {ratio:.1%}   target <= 15%"
    )
    print(
        f"full Gen 3 image ({full.bytes_written:,} bytes): {full_sim:.1f} s simulated vs floor "
        f"{floor:.1f} s = {full_sim / floor:.3f}x   target <= 1.05x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: eight virtual USB devices flashed at once from one process vs one device.

Each device gets what a line writes over USB: Device OS 4.2.0's system part and
a test-firmware user part over DfuSe (request 50 into DFU mode, erase, write,
read-back verify), then a reset that waits for re-enumeration. The devices are
virtual Borons on trayline's pyusb backend; ``--scale`` converts their device
time (85 ms per 4 KB page erase, 41 µs per word written, 5 s per mode change or
reset: spec §10.4) into real sleeping, so the figures are about overlapping
device time, the way eight USB ports overlap on a station, not about Python.

(Named ``usb_flash.py``, not ``usb.py``: a script's folder comes first on
``sys.path``, and a ``usb.py`` there would hide pyusb's ``usb`` package.)

Baseline (same run): one device flashed alone. Throughput = devices / wall time;
the target is ≥ 7× for eight devices.

    .venv/bin/python benchmarks/usb_flash.py                # scale 0.1, 8 devices
    .venv/bin/python benchmarks/usb_flash.py --scale 0.02 --devices 4
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from trayline.core.modules import ModuleFunction, parse_module
from trayline.core.skus import get_sku
from trayline.core.versions import SemVer
from trayline.programmers.usb import open_usb_programmer
from trayline.usb.virtual.backend import VirtualBackend
from trayline.virtual.device import VirtualDevice
from trayline.virtual.factory import factory_modules, user_part
from trayline.virtual.tray import FactoryOptions, Tray

RELEASE = SemVer(4, 2, 0)


def images() -> list[tuple[int, bytes]]:
    """System part 1 and a test-firmware user part of 4.2.0, as (address, flash image)."""
    out = []
    for data in factory_modules(13, RELEASE):
        module = parse_module(data)
        if module.function == ModuleFunction.SYSTEM_PART:
            out.append((module.start_address, module.flash_image(data)))
    user = user_part(13, RELEASE, test_firmware=True)
    out.append((parse_module(user).start_address, user))
    return out


def flash(backend: VirtualBackend, device: VirtualDevice, plan: list[tuple[int, bytes]]) -> None:
    with open_usb_programmer(
        device.device_id, slot=device.device_id, platform_id=13, backend=backend
    ) as prog:
        for address, image in plan:
            prog.write_module(address, image, verify=True)
        prog.reset()
    if not device.runs_test_firmware():
        raise SystemExit(f"{device.device_id}: not flashed")


def run(devices: list[VirtualDevice], scale: float, plan: list[tuple[int, bytes]]) -> float:
    backend = VirtualBackend.from_targets(devices, time_scale=scale)
    errors: list[BaseException] = []

    def work(device: VirtualDevice) -> None:
        try:
            flash(backend, device, plan)
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in devices]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"flash failed: {errors[0]}")
    device_seconds = sum(g.device_seconds for g in backend.gadgets)
    each = device_seconds / len(devices)
    print(f"  {len(devices)} device(s): {elapsed:6.2f} s wall, {each:5.1f} s device time each")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--scale", type=float, default=0.1, help="real s per device s")
    args = parser.parse_args()
    plan = images()
    size = sum(len(image) for _, image in plan)
    with tempfile.TemporaryDirectory() as tmp:
        tray = Tray.create(Path(tmp) / "tray", get_sku("BRN404X"), args.devices + 2, seed=11,
                           options=FactoryOptions(device_os="2.3.1"))  # fmt: skip
        devices = [tray.load(i) for i in tray.device_ids()]
    print(f"USB flash benchmark: {size / 1024:.0f} KiB per device (system part + user part), "
          f"time scale {args.scale}")  # fmt: skip
    print("warm-up (imports, first pyusb objects), one device, not counted:")
    run(devices[:1], args.scale, plan)
    print("baseline, one device alone:")
    one = run(devices[1:2], args.scale, plan)
    print(f"{args.devices} devices at once, one process:")
    many = run(devices[2:], args.scale, plan)
    ratio = (args.devices / many) / (1 / one)
    print(f"throughput: {1 / one * 60:.1f} devices/min alone, {args.devices / many * 60:.1f} "
          f"devices/min with {args.devices} at once -> {ratio:.2f}x (target >= 7x)")  # fmt: skip


if __name__ == "__main__":
    main()

"""Virtual devices on trayline's pyusb backend, for the end-to-end USB tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from usbkit import MakeBus

from trayline.core.skus import get_sku
from trayline.usb.virtual.backend import VirtualBackend
from trayline.virtual.device import VirtualDevice
from trayline.virtual.tray import FactoryOptions, Tray


@pytest.fixture
def make_bus(tmp_path: Path) -> MakeBus:
    """``make_bus("BRN404", count=2, device_os="2.3.1")`` → (backend, in-memory devices)."""
    counter = iter(range(1000))

    def make(sku: str, count: int = 1, device_os: str | None = None, scale: float = 0.0,
             seed: int = 7) -> tuple[VirtualBackend, list[VirtualDevice]]:  # fmt: skip
        folder = tmp_path / f"tray{next(counter)}"
        tray = Tray.create(folder, get_sku(sku), count, seed=seed,
                           options=FactoryOptions(device_os=device_os))  # fmt: skip
        devices = [tray.load(i) for i in tray.device_ids()]
        return VirtualBackend.from_targets(devices, time_scale=scale), devices

    return make

"""Fixtures for the virtual-device tests: trays in tmp_path, a pty server in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trayline.core.skus import get_sku
from trayline.virtual.serial_port import PortServer
from trayline.virtual.tray import FactoryOptions, Tray

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"

MakeTray = Callable[..., Tray]


@pytest.fixture
def make_tray(tmp_path: Path) -> MakeTray:
    """``make_tray("BRN404", count=3, seed=1, name="t", **FactoryOptions fields)``."""

    def make(
        sku: str = "BRN404", count: int = 3, seed: int = 1, name: str = "tray", **opts: object
    ) -> Tray:
        return Tray.create(
            tmp_path / name, get_sku(sku), count, seed=seed, options=FactoryOptions(**opts)
        )  # type: ignore[arg-type]

    return make


class Served:
    """A running PortServer for a tray: ``paths`` maps device ID to its /dev/pts/N."""

    def __init__(self, tray: Tray) -> None:
        self.tray = tray
        self.server = PortServer(tray, time_scale=0)
        self.paths = self.server.open()
        tray.publish_ports(self.paths)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.stop.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Tray], Served]]:
    started: list[Served] = []

    def start(tray: Tray) -> Served:
        served = Served(tray)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()

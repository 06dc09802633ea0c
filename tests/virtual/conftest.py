"""Fixtures for the virtual-device tests: trays in tmp_path, a pty server in a thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from traykit import MakeTray, Served

from trayline.core.skus import get_sku
from trayline.virtual.tray import FactoryOptions, Tray

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"


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

"""Stopping the stations a server drives (what ``trayline serve`` does on Ctrl-C or SIGTERM): a
slot still on its unit at the deadline is named (serve prints it), and a stopped station starts
again over a fresh runner."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from webkit import PROMPT_CONFIG, make_handle

from station.linekit import World, make_bundles
from trayline.store.db import open_store
from trayline.store.units import find_unit
from trayline.web.stations import StationHub


def test_stop_all_names_the_busy_slots_and_the_unit_resumes(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    make_bundles(store, tmp_path / "bundles")
    world = World()
    handle = make_handle(store, tmp_path, world, PROMPT_CONFIG)
    hub = StationHub([handle])
    hub.start_all()
    serial = world.add(51)
    for line in (serial, "BAT-000051", "ENC-000051"):
        handle.scan(line, operator="alice")
    deadline = time.monotonic() + 30
    while not handle.prompts.pending():  # the slot waits on the operator's question
        if time.monotonic() > deadline:  # a hang guard, not a speed check
            pytest.fail("no prompt appeared in 30 s")
        time.sleep(0.05)
    busy = hub.stop_all(timeout=0.2)
    assert busy == ["st1/A"] and hub.left_busy == busy
    assert handle.answer(False)  # let the stopped runner's slot end its unit
    assert handle.runner.wait_idle(timeout=30)
    unit = find_unit(store, serial)
    assert unit is not None and unit.status == "failed"
    assert hub.stop_all() == []  # stopping again: nothing running
    hub.start_all()  # a fresh runner over the same work
    assert handle.started and handle.snapshot()["running"] is True
    assert hub.stop_all() == []
    store.dispose()

"""The stations a ``trayline serve`` process owns: one runner each, driven from the web page.

The web station page drives the same :class:`~trayline.station.runner.Runner`
as ``trayline station run``: the server builds it once per station (in
``trayline serve``), starts its slot threads, and hands every scan and every
YES/NO button to it. Prompts come through a :class:`QueuedPrompts` the page
shows and answers. :meth:`StationHandle.snapshot` is what the page and its
live updates render: slots, waiting questions, the last messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trayline.station.front import Notice
from trayline.station.prompts import QueuedPrompts
from trayline.station.runner import Runner

__all__ = ["StationHandle", "StationHub"]


@dataclass
class StationHandle:
    """One station's runner and the prompt queue its page answers."""

    name: str
    runner: Runner
    prompts: QueuedPrompts
    started: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _scanning: threading.Lock = field(default_factory=threading.Lock)
    _stopped: bool = False

    def start(self) -> None:
        """Start the slots; after a stop, a fresh runner over the same work, tray and prompts
        (a stopped runner's threads are gone for good)."""
        with self._lock:
            if self.started:
                return
            if self._stopped:
                self.runner = self.runner.fresh()
            self.runner.start()
            self.started = True

    def stop(self, timeout: float = 5.0) -> list[str]:
        with self._lock:
            if not self.started:
                return []
            self.started = False
            self._stopped = True
            return self.runner.stop(timeout=timeout)

    def scan(self, text: str, operator: str | None = None) -> Notice | None:
        """One scanned line (sticker, part, RETEST, YES/NO), exactly as the terminal gives it.

        The scan front expects one input thread; web requests arrive on several, so scans
        are taken one at a time. ``operator`` (the signed-in user) is stamped on the events
        the scan writes and on those the slots write for the unit it sends them.
        """
        with self._scanning:
            return self.runner.scan(text.strip(), operator=operator)

    def answer(self, yes: bool) -> bool:
        """The YES/NO button: True when a waiting question took the answer."""
        return self.prompts.answer("YES" if yes else "NO")

    def snapshot(self) -> dict[str, Any]:
        """What the station page shows, JSON-ready (no secret: mobile secrets never get here)."""
        return {
            "station": self.name,
            "running": self.started,
            "slots": [
                {
                    "name": s.name,
                    "state": s.state,
                    "serial": s.serial,
                    "step": s.step,
                    "reason": s.reason,
                }
                for s in self.runner.slots()
            ],
            "prompts": [{"text": p.text, "step": p.step} for p in self.prompts.pending()],
            "notices": [
                {"level": n.level, "text": n.text, "serial": n.serial, "slot": n.slot}
                for n in reversed(self.runner.recent(8))
            ],
        }


class StationHub:
    """Every station this server drives, by name."""

    def __init__(self, handles: Iterable[StationHandle] = ()) -> None:
        self._handles = {h.name: h for h in handles}
        self.left_busy: list[str] = []
        """Slots still working a unit when :meth:`stop_all` gave up waiting."""

    def add(self, handle: StationHandle) -> None:
        self._handles[handle.name] = handle

    def get(self, name: str) -> StationHandle | None:
        return self._handles.get(name)

    def names(self) -> list[str]:
        return sorted(self._handles)

    def start_all(self) -> None:
        for handle in self._handles.values():
            handle.start()

    def stop_all(self, timeout: float = 5.0) -> list[str]:
        """Stop every station, waiting at most ``timeout`` in all for the units in its slots;
        the ``station/slot`` names still busy then (also kept in :attr:`left_busy`)."""
        deadline = time.monotonic() + timeout
        busy = []
        for handle in self._handles.values():
            left = handle.stop(timeout=max(0.0, deadline - time.monotonic()))
            busy += [f"{handle.name}/{slot}" for slot in left]
        self.left_busy = busy
        return busy

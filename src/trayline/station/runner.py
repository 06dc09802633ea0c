"""The station runner: slots working in parallel, the scan front, and what the screens show.

This is what both the terminal operator mode (``trayline station run``) and a
web page drive; it imports no Rich, no Typer, no HTTP. One thread per slot
pulls the next unit from a shared queue ("the next free slot") and runs it with
:func:`trayline.station.worker.work_unit`; a slot whose board fails or hangs
holds only itself up. Scans are handled on the caller's thread by
:class:`~trayline.station.front.Front`, so the operator can scan the next unit
while the slots run.

On :meth:`Runner.start` every unit of this station left in a working state by
a crash or power cut is queued again; its worker re-reads the device and goes
on from the recorded status.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trayline.settings.line import SlotSpec
from trayline.station.flow import ACTIVE, Status
from trayline.station.front import Front, Notice, TrayEntry
from trayline.station.worker import CATEGORIES, UnitWork, work_unit
from trayline.store.units import list_units

__all__ = ["Runner", "SlotView"]

_STOP = ""
_IDS = re.compile(r"\b(?:[0-9a-f]{24}|[A-Z0-9]{15})\b")
_NUMBERS = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class SlotView:
    """What one slot's panel shows."""

    name: str
    state: str
    """``idle``, ``working``, ``pass`` or ``fail``."""
    serial: str | None = None
    step: str = ""
    reason: str | None = None
    since: float = 0.0


@dataclass(slots=True)
class _Stats:
    started: float = field(default_factory=time.perf_counter)
    unit_seconds: list[float] = field(default_factory=list)
    finished: Counter[str] = field(default_factory=Counter)


class Runner:
    """One station: its slots' threads, its scan front, its notices."""

    def __init__(
        self,
        work: UnitWork,
        *,
        tray: Mapping[str, TrayEntry] | None = None,
        answer: Any = None,
    ) -> None:
        self.work = work
        self.config = work.config
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}
        self._operators: dict[str, str | None] = {}
        self._slots = {s.name: SlotView(s.name, "idle") for s in self.config.slots}
        self._threads: list[threading.Thread] = []
        self.notices: deque[Notice] = deque(maxlen=200)
        self.all_notices: list[Notice] = []
        self.stats = _Stats()
        self.work.progress = self._progress
        self.work.warn = self._warn
        self.front = Front(
            work.store,
            self.config,
            tray=tray if tray is not None else {},
            dispatch=self._dispatch,
            busy=self._busy,
            answer=answer if answer is not None else (lambda _w: False),
            operator=work.operator,
        )

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> list[Notice]:
        """Start one thread per slot and queue every unit a dead run left mid-way."""
        for spec in self.config.slots:
            thread = threading.Thread(
                target=self._slot_loop, args=(spec,), name=f"slot-{spec.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        resumed = []
        for unit in list_units(self.work.store, station=self.config.station):
            if unit.status in ACTIVE:
                resumed.append(self._dispatch(unit.serial_number, resumed=True))
        return resumed

    def fresh(self) -> Runner:
        """A new, unstarted runner over the same work, tray and answers — what a station
        started again after :meth:`stop` runs (a stopped runner's slot threads are gone)."""
        return Runner(self.work, tray=self.front.tray, answer=self.front.answer)

    def stop(self, timeout: float = 5.0) -> list[str]:
        """Ask every slot to stop after its unit; the names of slots still busy at ``timeout``."""
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name.removeprefix("slot-") for t in self._threads if t.is_alive()]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no unit is queued or in a slot; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._pending:
                    return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    # -- scanning -----------------------------------------------------------------------

    def scan(self, line: str, operator: str | None = None) -> Notice | None:
        """Handle one scanned line; the notice is also kept for the screen.

        ``operator`` (the web page's signed-in user) is stamped on the events this scan writes
        and on those the slots write for a unit it sends them; None keeps the last one (the
        ``--operator`` of ``trayline station run``)."""
        if operator is not None and self.front.ctx.operator != operator:
            self.front.ctx = replace(self.front.ctx, operator=operator)
        try:
            notice = self.front.scan(line)
        except Exception as exc:  # a store hiccup must not end the operator's session
            notice = Notice("error", f"scan not recorded: {type(exc).__name__}: {exc}")
        if notice is not None:
            self._note(notice)
        return notice

    def _note(self, notice: Notice) -> None:
        with self._lock:
            self.notices.append(notice)
            self.all_notices.append(notice)

    def _busy(self, serial: str) -> str | None:
        with self._lock:
            return self._pending.get(serial)

    def _dispatch(self, serial: str, *, resumed: bool = False) -> Notice:
        with self._lock:
            if serial in self._pending:
                return Notice("warn", f"{serial} is already {self._pending[serial]}", serial)
            self._pending[serial] = "waiting for a free slot"
            self._operators[serial] = self.front.ctx.operator
            free = [s.name for s in self._slots.values() if s.state != "working"]
        self._queue.put(serial)
        verb = "resumed from its last recorded step" if resumed else "ready for testing"
        where = f"place it on the next free slot ({free[0]})" if free else "waits for a slot"
        notice = Notice("info", f"{serial} {verb}: {where}", serial)
        if resumed:
            self._note(notice)
        return notice

    # -- slots --------------------------------------------------------------------------

    def _progress(self, slot: str, serial: str, what: str) -> None:
        with self._lock:
            view = self._slots[slot]
            self._slots[slot] = replace(view, state="working", serial=serial, step=what)
            self._pending[serial] = f"on slot {slot} ({what})"

    def _warn(self, slot: str, serial: str, what: str) -> None:
        self._note(Notice("warn", f"{serial} on slot {slot}: {what}", serial, slot))

    def _slot_loop(self, spec: SlotSpec) -> None:
        while True:
            serial = self._queue.get()
            if serial == _STOP:
                return
            began = time.perf_counter()
            with self._lock:
                self._slots[spec.name] = SlotView(
                    spec.name, "working", serial, "starting", None, began
                )
                self._pending[serial] = f"on slot {spec.name}"
                operator = self._operators.pop(serial, self.work.operator)
            work = self.work
            if operator != work.operator:  # the unit's events name who scanned it in
                work = replace(work, operator=operator)
            try:
                view = work_unit(work, spec, serial)
            except Exception as exc:  # the slot must survive anything one unit does
                view = None
                self._finish(
                    spec, serial, "fail", f"station error: {type(exc).__name__}: {exc}", began
                )
                continue
            if view is None:
                self._leave(spec, serial)
            elif view.status == Status.READY:
                self._finish(spec, serial, "pass", None, began)
            else:
                self._finish(spec, serial, "fail", view.reason or view.status, began)

    def _leave(self, spec: SlotSpec, serial: str) -> None:
        """Another live process holds the unit's lease: not a failure, just not ours."""
        with self._lock:
            self._slots[spec.name] = SlotView(spec.name, "idle")
            self._pending.pop(serial, None)
        text = f"{serial} is being worked by another station process; left alone"
        self._note(Notice("warn", text, serial, spec.name))

    def _finish(
        self, spec: SlotSpec, serial: str, state: str, reason: str | None, began: float
    ) -> None:
        elapsed = time.perf_counter() - began
        text = (
            f"{serial} PASS on {spec.name}"
            if state == "pass"
            else f"{serial} FAIL on {spec.name}: {reason}"
        )
        with self._lock:
            self._slots[spec.name] = SlotView(
                spec.name, state, serial, "", reason, time.perf_counter()
            )
            self._pending.pop(serial, None)
            self.stats.unit_seconds.append(elapsed)
            self.stats.finished[state] += 1
        self._note(Notice("ok" if state == "pass" else "error", text, serial, spec.name))

    # -- what the screens show --------------------------------------------------------------

    def slots(self) -> list[SlotView]:
        with self._lock:
            return list(self._slots.values())

    def recent(self, n: int = 8) -> list[Notice]:
        with self._lock:
            return list(self.notices)[-n:]

    def summary(self) -> dict[str, Any]:
        """The run's figures and every unit of this station, for ``--json`` and the demo."""
        units = list_units(self.work.store, station=self.config.station)
        by_status = Counter(u.status for u in units)
        reasons = Counter(reason_class(u.reason) for u in units if u.status == Status.FAILED)
        elapsed = time.perf_counter() - self.stats.started
        done = by_status[Status.READY] + by_status[Status.FAILED]
        with self._lock:
            seconds = list(self.stats.unit_seconds)
            notices = [n for n in self.all_notices if n.level in ("error", "warn")]
        return {
            "station": self.config.station,
            "units": len(units),
            "by_status": dict(sorted(by_status.items())),
            "yield": round(by_status[Status.READY] / done, 4) if done else None,
            "failures_by_reason": dict(reasons.most_common()),
            "elapsed_s": round(elapsed, 3),
            "seconds_per_unit": round(sum(seconds) / len(seconds), 3) if seconds else None,
            "units_per_hour": round(done / elapsed * 3600, 1) if elapsed > 0 and done else None,
            "slots": len(self.config.slots),
            "failed": [
                {"serial_number": u.serial_number, "reason": u.reason}
                for u in units
                if u.status == Status.FAILED
            ],
            "messages": [{"level": n.level, "text": n.text} for n in notices],
        }


def reason_class(reason: str | None) -> str:
    """A failure reason with unit-specific IDs and numbers blanked, for "failures by reason"."""
    if not reason:
        return "unknown"
    for category in CATEGORIES:
        if reason.startswith(category + ":"):
            return category
    text = _IDS.sub("…", reason)
    return _NUMBERS.sub("#", text)[:100]

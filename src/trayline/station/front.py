"""The operator's side of the bench: what each scan does to the line.

:class:`Front` turns scanned lines into unit records: a sticker starts (or
resumes) a unit, part barcodes link parts to the unit being built, ``RETEST``
sends the last failed unit round again, ``YES``/``NO`` answer a waiting test
prompt. When a unit has every required part it is handed to the slots through
``dispatch``. Every scan ends in exactly one :class:`Notice` for the operator's
screen — a refusal is a message, never an exception — so the line goes on
after a bad scan.

The mobile secret of a Gen 3 sticker is dropped in :mod:`trayline.station.scan`
and never reaches this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from trayline.settings.line import LineConfig
from trayline.station.flow import ACTIVE, Status, retest_allowed
from trayline.station.scan import Command, PartScan, StickerScan, Unknown, classify
from trayline.store.db import Store
from trayline.store.models.base import utcnow
from trayline.store.units import (
    EventContext,
    PartTaken,
    UnitView,
    add_event,
    advance,
    link_part,
    register_unit,
    unit_by_serial,
)

__all__ = ["Front", "Notice", "TrayEntry"]


@dataclass(frozen=True, slots=True)
class Notice:
    """One line on the operator's screen."""

    level: str
    """``ok``, ``info``, ``warn`` or ``error``."""
    text: str
    serial: str | None = None
    slot: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class TrayEntry:
    """What the tray list (or the cloud) says about a serial."""

    device_id: str | None
    iccid: str | None = None
    imei: str | None = None


class Front:
    """Scan handling for one station; called from one input thread."""

    def __init__(
        self,
        store: Store,
        config: LineConfig,
        *,
        tray: Mapping[str, TrayEntry],
        dispatch: Callable[[str], Notice],
        busy: Callable[[str], str | None],
        answer: Callable[[str], bool],
        operator: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.tray = tray
        self.dispatch = dispatch
        self.busy = busy
        self.answer = answer
        self.ctx = EventContext(config.station, None, operator)
        self.current: UnitView | None = None
        self.last_failed: str | None = None

    def missing(self, unit: UnitView) -> list[str]:
        have = {kind for kind, _ in unit.parts}
        return [p.name for p in self.config.parts if p.required and p.name not in have]

    def scan(self, line: str) -> Notice | None:
        missing = self.missing(self.current) if self.current else []
        kind = classify(line, self.config.parts, missing)
        if kind is None:
            return None
        if isinstance(kind, StickerScan):
            return self.sticker(kind)
        if isinstance(kind, PartScan):
            return self.part(kind)
        if isinstance(kind, Command):
            return self.command(kind.word)
        assert isinstance(kind, Unknown)
        return Notice("error", f"unknown scan {kind.text!r}: {kind.why}")

    def sticker(self, scan: StickerScan) -> Notice:
        serial = str(scan.serial)
        left = self.current
        self.current = None  # parts scanned next belong to this sticker, never the previous one
        notice = self._sticker(scan)
        if left is not None and left.serial_number != serial:
            missing = ", ".join(self.missing(left))
            return replace(
                notice,
                level="warn",
                text=f"{notice.text} ({left.serial_number} still needs {missing}: "
                "scan its sticker again to finish it)",
            )
        return notice

    def _sticker(self, scan: StickerScan) -> Notice:
        serial = str(scan.serial)
        sku = self.config.sku
        if not any(serial.startswith(p) for p in sku.serial_prefixes):
            return Notice(
                "error",
                f"{serial} is not a {sku.name} (serials start with "
                f"{', '.join(sku.serial_prefixes)}): wrong tray?",
                serial,
            )
        known = self.tray.get(serial)
        if self.tray and known is None:
            return Notice("error", f"{serial} is not in the tray list: set it aside", serial)
        unit, created = register_unit(
            self.store,
            serial,
            sku=sku.name,
            ctx=self.ctx,
            expected_device_id=known.device_id if known else None,
            iccid=known.iccid if known else None,
            imei=known.imei if known else None,
        )
        return self._started(unit) if created else self._again(unit)

    def _started(self, unit: UnitView) -> Notice:
        self.current = unit
        missing = self.missing(unit)
        if not missing:
            return self._complete(unit)
        return Notice(
            "info", f"{unit.serial_number}: scan {', '.join(missing)}", unit.serial_number
        )

    def _again(self, unit: UnitView) -> Notice:
        serial = unit.serial_number
        where = self.busy(serial)
        if where is not None:
            return Notice("warn", f"{serial} scanned twice: it is {where}", serial)
        status = Status(unit.status)
        if status is Status.SCANNED:
            return self._started(unit)
        if status is Status.READY:
            return Notice("warn", f"{serial} scanned twice: it already passed (ready)", serial)
        if status is Status.FAILED:
            self.last_failed = serial
            limit = self.config.retest_limit
            if retest_allowed(unit.status, unit.attempts, limit):
                return Notice(
                    "warn",
                    f"{serial} failed before ({unit.reason}); scan RETEST to test it again "
                    f"(attempt {unit.attempts + 1} of {limit + 1})",
                    serial,
                )
            return Notice(
                "error", f"{serial} failed {unit.attempts} time(s), no retest left: scrap", serial
            )
        if status in ACTIVE:
            return self.dispatch(serial)
        return Notice("warn", f"{serial} scanned twice ({unit.status})", serial)

    def part(self, scan: PartScan) -> Notice:
        unit = self.current
        name = scan.part.name
        if unit is None:
            return Notice("error", f"{name} {scan.serial}: scan a device sticker first")
        unit = unit_by_serial(self.store, unit.serial_number) or unit
        if Status(unit.status) is not Status.SCANNED:
            return Notice(
                "error",
                f"{name} {scan.serial}: {unit.serial_number} is past part linking; "
                "scan the next sticker first",
                unit.serial_number,
            )
        already = [s for kind, s in unit.parts if kind == name]
        if already and already[0] != scan.serial:
            return Notice(
                "error",
                f"{unit.serial_number} already has {name} {already[0]}; {scan.serial} not linked",
                unit.serial_number,
            )
        required = [p.name for p in self.config.parts if p.required]
        try:
            # The scan that completes the unit also moves it to parts_linked: one flush.
            linked = link_part(
                self.store,
                unit.id,
                name,
                scan.serial,
                unique=scan.part.unique,
                ctx=self.ctx,
                complete=required,
            )
        except PartTaken as exc:
            add_event(self.store, unit.id, "part_refused", ctx=self.ctx, detail=str(exc))
            return Notice("error", f"refused: {exc}", unit.serial_number)
        unit = linked or unit_by_serial(self.store, unit.serial_number) or unit
        self.current = unit
        if Status(unit.status) is Status.PARTS_LINKED:
            self.current = None
            return self.dispatch(unit.serial_number)
        missing = self.missing(unit)
        if missing:
            return Notice(
                "info",
                f"{unit.serial_number}: {name} linked; scan {', '.join(missing)}",
                unit.serial_number,
            )
        return self._complete(unit)

    def _complete(self, unit: UnitView) -> Notice:
        names = ", ".join(f"{k} {s}" for k, s in unit.parts) or "no parts configured"
        advance(self.store, unit.id, Status.PARTS_LINKED, owner=None, ctx=self.ctx, detail=names)
        self.current = None
        return self.dispatch(unit.serial_number)

    def command(self, word: str) -> Notice:
        if word in ("YES", "NO"):
            if self.answer(word):
                return Notice("info", f"answer {word} given")
            return Notice("warn", f"{word}: no question is waiting")
        serial = self.last_failed
        unit = unit_by_serial(self.store, serial) if serial else None
        if unit is None or Status(unit.status) is not Status.FAILED:
            return Notice("error", "RETEST: scan the failed unit's sticker first")
        if not retest_allowed(unit.status, unit.attempts, self.config.retest_limit):
            return Notice("error", f"{unit.serial_number}: no retest left", unit.serial_number)
        self.last_failed = None
        advance(
            self.store,
            unit.id,
            Status.PARTS_LINKED,
            owner=None,
            ctx=self.ctx,
            detail=f"retest requested (attempt {unit.attempts + 1})",
        )
        return self.dispatch(unit.serial_number)

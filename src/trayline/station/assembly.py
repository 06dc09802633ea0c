"""Putting a station together from a line: slots to probes, serials to devices, ports to channels.

The terminal (``trayline station run``), the demo, the benchmark and the crash
tests all build their :class:`~trayline.station.runner.Runner` here, so they
run the same code path. What differs between a real bench and a virtual tray
is only where things are found:

* the **probe** of a slot is its configured ``probe``; empty means "the
  device placed there", i.e. the unit's device ID (a virtual tray's probe IDs
  are device IDs; a USB backend finds a device by its ID too);
* the **test port** is the slot's ``port``, else the device's entry in the
  virtual tray's ``ports.json`` (published by ``trayline virtual serve``);
* the **tray list** (serial → device ID, ICCID) is ``--tray FILE`` or the
  virtual tray's ``tray.csv``, read by :mod:`trayline.inputs`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from trayline.console.testfw import TestFirmwareClient
from trayline.inputs import read_inputs
from trayline.programmers.base import (
    DeviceNotAnswering,
    Programmer,
    SlotPolicy,
    TargetNotHalted,
)
from trayline.programmers.registry import open_programmer
from trayline.settings.line import SlotSpec
from trayline.station.connectivity import CloudPresence
from trayline.station.front import TrayEntry
from trayline.station.labels import LabelConfig, LabelData, print_label
from trayline.station.lease import owner_name
from trayline.station.line import Line
from trayline.station.plantester import plan_tester
from trayline.station.prompts import PromptSource
from trayline.station.runner import Runner
from trayline.station.testchannel import TestChannel
from trayline.station.worker import SlotDevice, TestRequest, UnitWork
from trayline.store.db import Store
from trayline.store.units import UnitView, for_threads

__all__ = ["PortChannel", "StationOptions", "build_runner", "read_tray", "serial_channel"]

CONNECT_ATTEMPTS = 3
"""A target that did not halt is tried again (a marginal pogo pin often connects next time)."""

PortChannel = Callable[[str, float], AbstractContextManager[TestChannel]]
"""Open the test-firmware channel on a serial port path (with an open timeout)."""


def serial_channel(path: str, timeout: float) -> AbstractContextManager[TestChannel]:
    """The test-firmware client on a serial port (a real /dev/ttyACM* or a virtual pty)."""
    return TestFirmwareClient(path, timeout=timeout)


@dataclass(frozen=True, slots=True)
class StationOptions:
    virtual_dir: Path | None = None
    tray_file: Path | None = None
    operator: str | None = None
    time_scale: float | None = None
    link: str | None = None
    backend_options: tuple[tuple[str, str], ...] = ()
    """Extra programmer options (e.g. the virtual backend's ``sync=0`` for benchmarks)."""


def read_tray(path: Path) -> dict[str, TrayEntry]:
    """Serial → device ID / ICCID / IMEI from a tray list; rows without a serial are skipped."""
    result = read_inputs(path)
    result.raise_if_invalid()
    return {
        str(d.serial): TrayEntry(
            str(d.device_id) if d.device_id else None,
            str(d.iccid) if d.iccid else None,
            str(d.imei) if d.imei else None,
        )
        for d in result.devices
        if d.serial
    }


class _Locator:
    """Where a unit is: its probe and test port in a slot.

    On a virtual tray the board "placed" is the one whose sticker was scanned:
    ``placed`` maps serials to the devices that physically carry them (the
    tray folder's own ``tray.csv``), which may differ from what an order's tray
    list claims — that difference is what the silicon ID check catches.
    """

    def __init__(self, options: StationOptions, placed: Mapping[str, TrayEntry]) -> None:
        self.options = options
        self.placed = placed

    def __call__(self, slot: SlotSpec, unit: UnitView) -> SlotDevice:
        on_board = self.placed.get(unit.serial_number)
        device_id = (on_board.device_id if on_board else None) or unit.device_id
        device_id = device_id or unit.expected_device_id
        probe = slot.probe or device_id
        if probe is None:
            raise DeviceNotAnswering(
                "no probe configured and the unit's device ID is unknown (no tray list)",
                slot=slot.name,
            )
        backend = "virtual" if self.options.virtual_dir else slot.backend
        return SlotDevice(backend, probe, slot.port or self._port(device_id))

    def _port(self, device_id: str | None) -> str | None:
        folder = self.options.virtual_dir
        if folder is None or device_id is None:
            return None
        try:
            ports = json.loads((folder / "ports.json").read_text())
        except (OSError, ValueError):
            return None
        port = ports.get(device_id) if isinstance(ports, dict) else None
        return port if isinstance(port, str) else None


class _Opener:
    def __init__(self, options: StationOptions) -> None:
        self.options = options

    def __call__(self, device: SlotDevice, slot: SlotSpec, platform_id: int) -> Programmer:
        extra: dict[str, str] = dict(self.options.backend_options)
        if self.options.virtual_dir is not None:
            extra["tray"] = str(self.options.virtual_dir)
            if self.options.time_scale is not None:
                extra["time_scale"] = str(self.options.time_scale)
            if self.options.link:
                extra["link"] = self.options.link
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                return open_programmer(
                    device.backend,
                    device.probe_id,
                    slot=slot.name,
                    platform_id=platform_id,
                    policy=SlotPolicy(allow_unlock=slot.allow_unlock),
                    options=extra,
                )
            except TargetNotHalted:
                if attempt == CONNECT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def _channels(
    port_channel: PortChannel, timeout: float
) -> Callable[[TestRequest], AbstractContextManager[TestChannel]]:
    def open_for(request: TestRequest) -> AbstractContextManager[TestChannel]:
        if request.port is None:
            raise FileNotFoundError(
                f"no test-firmware port for {request.device_id} on slot {request.slot} "
                "(set the slot's port, or run `trayline virtual serve DIR`)"
            )
        return port_channel(request.port, timeout)

    return open_for


def _labeller(config: LabelConfig) -> Callable[[UnitView], str]:
    def label(unit: UnitView) -> str:
        data = LabelData(unit.serial_number, unit.device_id or "", unit.sku or "")
        return print_label(data, config)

    return label


def build_runner(
    store: Store,
    line: Line,
    options: StationOptions,
    *,
    port_channel: PortChannel = serial_channel,
    prompts: PromptSource | None,
    answer: Callable[[str], bool] | None = None,
    tray: Mapping[str, TrayEntry] | None = None,
    cloud_check: CloudPresence | None = None,
) -> Runner:
    """A runner for ``line`` on ``store``, wired to real or virtual slots."""
    store = for_threads(store)
    placed = read_tray(options.virtual_dir / "tray.csv") if options.virtual_dir else {}
    if tray is None:
        tray = read_tray(options.tray_file) if options.tray_file else dict(placed)
    tester = plan_tester(
        line,
        _channels(port_channel, line.plan.hello_timeout_s),
        prompts=prompts,
        cloud_check=cloud_check,
    )

    work = UnitWork(
        store=store,
        config=line.config,
        owner=owner_name(line.config.station),
        operator=options.operator,
        tester=tester,
        opener=_Opener(options),
        locate=_Locator(options, placed),
        label=_labeller(line.label) if line.label else None,
    )
    return Runner(work, tray=tray, answer=answer)

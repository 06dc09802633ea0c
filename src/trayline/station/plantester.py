"""The slot's test step: open the unit's test-firmware channel and run the line's test plan.

:func:`plan_tester` adapts :func:`trayline.station.testrunner.run_test_plan`
(the plan runner) to the worker's :data:`~trayline.station.worker.Tester`:
given a unit in a slot it opens that slot's channel (a serial port, a virtual
device's pty, a fake in tests), runs every step, and returns the verdict and
each measurement as the store keeps it. A port that cannot be opened is a
failed test with the port named, never an exception: the slot goes on.

Where the line says cellular cannot work at the site (Cat M1 at a CM in
China), the cloud connectivity step is skipped with that reason recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from trayline.station.connectivity import CloudPresence
from trayline.station.instruments import Instruments
from trayline.station.line import Line
from trayline.station.prompts import PromptSource
from trayline.station.testchannel import TestChannel
from trayline.station.testrunner import run_test_plan
from trayline.station.worker import Tester, TestRequest, TestResult

__all__ = ["ChannelOpener", "plan_tester"]

ChannelOpener = Callable[[TestRequest], AbstractContextManager[TestChannel]]


def plan_tester(
    line: Line,
    channels: ChannelOpener,
    *,
    prompts: PromptSource | None = None,
    instruments: Instruments | None = None,
    cloud_check: CloudPresence | None = None,
) -> Tester:
    """A :data:`Tester` that runs ``line``'s plan through ``channels``."""
    config = line.config
    skip = None
    if config.connectivity_skipped:
        skip = f"{config.sku.name} (LTE Cat M1) cannot connect at a CM in {config.site.country}"
    elif cloud_check is None:
        skip = "no cloud connection for this station (run it with --cloud-check)"

    def test(request: TestRequest) -> TestResult:
        try:
            with channels(request) as channel:
                outcome = run_test_plan(
                    line.plan,
                    channel,
                    prompts=prompts,
                    instruments=instruments,
                    cloud_check=None if skip else cloud_check,
                    cloud_skip_reason=skip,
                    expect_device_id=request.device_id,
                )
        except OSError as exc:
            where = request.port or "(no port)"
            return TestResult(
                False, f"cannot open the test-firmware port {where}: {exc.strerror or exc}", ()
            )
        return TestResult(
            outcome.passed, outcome.reason, [m.to_json() for m in outcome.measurements]
        )

    return test

"""Test plans: what a station asks of each board, as plain data.

A plan is an ordered list of steps. Each step is one of six kinds, each its own
frozen dataclass so the runner's ``match`` is checked by mypy:

============ ==============================================================================
kind         what happens
============ ==============================================================================
measure      ask the test firmware for named measurements (``{"cmd": "measure"}``)
run          start a firmware routine that streams measurements (``{"cmd": "run"}``)
prompt       ask the operator a yes/no question (key, YES/NO barcode, script line)
instrument   query a bench instrument through VISA (SCPI ``MEAS:CURR:DC?``), judge the number
cloud_online wait until the cloud reports the device online (skipped where the line says so)
setup_done   ask the test firmware to set the Gen 3 setup-done flag (``{"cmd": "setup_done"}``)
============ ==============================================================================

Every step has a timeout (seconds for the whole step) and a retry count (how many
times a failed step runs again before the unit fails). Plans come from the
``[test_plan]`` table of ``trayline.toml`` through
:func:`trayline.station.testplan_config.parse_test_plan`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from trayline.station.measurements import MeasurementSpec

DEFAULT_TIMEOUT_S = 5.0
"""Firmware steps (hello, measure, run, setup_done) unless the plan says otherwise."""
DEFAULT_PROMPT_TIMEOUT_S = 300.0
DEFAULT_INSTRUMENT_TIMEOUT_S = 10.0
DEFAULT_CLOUD_TIMEOUT_S = 1200.0
"""The guide: connecting "could take up to 20 minutes"."""


class StepKind(StrEnum):
    MEASURE = "measure"
    RUN = "run"
    PROMPT = "prompt"
    INSTRUMENT = "instrument"
    CLOUD_ONLINE = "cloud_online"
    SETUP_DONE = "setup_done"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepBase:
    name: str
    timeout_s: float
    retries: int = 0
    """Extra attempts after a failed one (0: run once)."""
    retry_delay_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasureStep(StepBase):
    measurements: tuple[MeasurementSpec, ...]
    kind: StepKind = StepKind.MEASURE


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStep(StepBase):
    test: str
    args: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    measurements: tuple[MeasurementSpec, ...] = ()
    """Expected measurements: each must be streamed and pass. Others streamed are recorded."""
    kind: StepKind = StepKind.RUN


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptStep(StepBase):
    text: str
    expect: bool = True
    """The answer that passes (``Is the LED red?`` → ``expect = false`` is allowed)."""
    kind: StepKind = StepKind.PROMPT

    @property
    def measurement(self) -> MeasurementSpec:
        return MeasurementSpec(name=self.name, equals=self.expect)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentStep(StepBase):
    instrument: str
    """Name of an entry of ``[test_plan.instruments]``."""
    query: str
    measurement: MeasurementSpec
    setup: tuple[str, ...] = ()
    """SCPI commands written before the query (``CONF:CURR:DC 0.001``)."""
    scale: float = 1.0
    """Multiplies the instrument's answer (``1e6`` turns amperes into µA)."""
    samples: int = 1
    """Readings taken (the query sent this many times); ``aggregate`` makes them one."""
    aggregate: str = "mean"
    """``mean``, ``median``, ``min`` or ``max`` of the samples."""
    kind: StepKind = StepKind.INSTRUMENT


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudOnlineStep(StepBase):
    poll_interval_s: float = 5.0
    kind: StepKind = StepKind.CLOUD_ONLINE

    @property
    def measurement(self) -> MeasurementSpec:
        return MeasurementSpec(name=self.name, equals=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupDoneStep(StepBase):
    kind: StepKind = StepKind.SETUP_DONE

    @property
    def measurement(self) -> MeasurementSpec:
        return MeasurementSpec(name=self.name, equals=True)


Step = MeasureStep | RunStep | PromptStep | InstrumentStep | CloudOnlineStep | SetupDoneStep


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """A bench instrument reached through VISA.

    ``resource`` is a VISA resource string (``USB0::0x2A8D::0x1301::MY59001234::INSTR``,
    ``TCPIP0::192.168.1.50::inst0::INSTR``, ``ASRL/dev/ttyUSB0::INSTR``).
    ``backend`` is PyVISA's backend argument: empty for the system VISA or
    ``@py`` (pyvisa-py), ``path/to/bench.yaml@sim`` to rehearse with pyvisa-sim.
    """

    name: str
    resource: str
    backend: str = ""
    read_termination: str = "\n"
    write_termination: str = "\n"


@dataclass(frozen=True, slots=True)
class TestPlan:
    steps: tuple[Step, ...]
    instruments: Mapping[str, InstrumentSpec] = field(default_factory=lambda: MappingProxyType({}))
    hello_timeout_s: float = DEFAULT_TIMEOUT_S
    stop_on_fail: bool = True
    """Stop at the first failed step (the usual line practice) or run every step."""

    __test__ = False  # not a pytest class

    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    @property
    def needs_firmware(self) -> bool:
        """True when some step talks to the test firmware (then the runner says hello first)."""
        return any(isinstance(s, MeasureStep | RunStep | SetupDoneStep) for s in self.steps)

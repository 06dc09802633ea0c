"""Bench instruments through VISA: a SCPI query, a number, a verdict.

A test plan's ``instrument`` step writes its setup commands, sends one query
(``MEAS:CURR:DC?`` to a DMM in series with the battery, for sleep current) and
judges the number that comes back. The runner sees only :class:`Instruments`
(``query(name, command, setup=..., timeout_s=...) -> str``), so tests and
rehearsals swap the bench for pyvisa-sim without changing the plan.

:class:`VisaInstruments` opens each instrument of ``[test_plan.instruments]``
once, on first use, through PyVISA, and serialises access to it with a lock: one
DMM is often shared by every slot of a fixture, and two SCPI conversations
interleaved on one instrument give nonsense. :func:`parse_scpi_number` turns the
instrument's reply (``+1.23450000E-05``, ``1.2e-5,VDC``) into a float.

Errors are :class:`InstrumentError` with the instrument name and resource in
plain words; a VISA timeout becomes :class:`TimeoutError`.
"""

from __future__ import annotations

import contextlib
import math
import re
import statistics
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from trayline.station.testplan import InstrumentSpec

_SCPI_ERROR_RE = re.compile(r'\s*[+-]?\d+\s*,\s*".*"\s*')
_NUMBER_RE = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
SCPI_OVERLOAD = 9.9e37
"""SCPI's "overload / not a number" reading (IEEE 488.2): never a real value."""


AGGREGATES = ("mean", "median", "min", "max")


def aggregate(values: Sequence[float], how: str) -> float:
    """One reading from several (``mean``, ``median``, ``min``, ``max``); ValueError if none."""
    if not values:
        raise ValueError("no readings")
    if how == "mean":
        return statistics.fmean(values)
    if how == "median":
        return float(statistics.median(values))
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    raise ValueError(f"unknown aggregate {how!r}")


class InstrumentError(Exception):
    """The instrument could not be reached or gave no usable answer."""


class Instruments(Protocol):
    def query(self, name: str, command: str, *, setup: Sequence[str] = (), timeout_s: float) -> str:
        """Write ``setup`` then ``command``; the reply text. TimeoutError, InstrumentError."""
        ...


def parse_scpi_number(reply: str) -> float:
    """The first number of an instrument reply; ValueError when there is none.

    ``+1.23450000E-05`` → 1.2345e-05; ``-70.5,DBM`` → -70.5. The SCPI overload
    value 9.9E37 is refused (the range was too small or the input open), and so
    is an error-queue entry (``-113,"Undefined header"``), which begins with a
    number too.
    """
    if _SCPI_ERROR_RE.fullmatch(reply):
        raise ValueError(f"an error message {reply.strip()[:60]!r}, not a reading")
    match = _NUMBER_RE.match(reply)
    if match is None:
        raise ValueError(f"not a number: {reply.strip()[:40]!r}")
    value = float(match.group(1))
    if not math.isfinite(value) or abs(value) >= SCPI_OVERLOAD:
        raise ValueError(
            f"overload reading {reply.strip()[:40]!r} (range too small, or open input)"
        )
    return value


class VisaInstruments:
    """:class:`Instruments` over PyVISA, each instrument opened once and locked per query."""

    def __init__(self, specs: Mapping[str, InstrumentSpec]) -> None:
        self._specs = dict(specs)
        self._managers: dict[str, Any] = {}
        self._open: dict[str, Any] = {}
        self._locks = {name: threading.Lock() for name in self._specs}
        self._guard = threading.Lock()

    def __enter__(self) -> VisaInstruments:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, name: str, command: str, *, setup: Sequence[str] = (), timeout_s: float) -> str:
        import pyvisa.errors

        if name not in self._specs:
            raise InstrumentError(f"no instrument {name!r} configured")
        spec = self._specs[name]
        with self._locks[name]:
            resource = self._resource(spec)
            try:
                resource.timeout = int(timeout_s * 1000)
                for line in setup:
                    resource.write(line)
                return str(resource.query(command))
            except pyvisa.errors.VisaIOError as exc:
                if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                    raise TimeoutError(timeout_s) from None
                raise InstrumentError(f"{name} ({spec.resource}): {exc.description}") from None

    def _resource(self, spec: InstrumentSpec) -> Any:
        import pyvisa

        with self._guard:
            if spec.name in self._open:
                return self._open[spec.name]
            try:
                manager = self._managers.get(spec.backend)
                if manager is None:
                    manager = pyvisa.ResourceManager(spec.backend)
                    self._managers[spec.backend] = manager
                resource = manager.open_resource(
                    spec.resource,
                    read_termination=spec.read_termination,
                    write_termination=spec.write_termination,
                )
            except (pyvisa.errors.Error, OSError, ValueError) as exc:
                where = f" with backend {spec.backend!r}" if spec.backend else ""
                raise InstrumentError(
                    f"cannot open instrument {spec.name} at {spec.resource}{where}: "
                    f"{_one_line(exc)}"
                ) from None
            self._open[spec.name] = resource
            return resource

    def close(self) -> None:
        """Close every instrument opened (errors while closing are ignored)."""
        with self._guard:
            for resource in self._open.values():
                # closing a broken instrument must not mask the step's result
                with contextlib.suppress(Exception):
                    resource.close()
            self._open.clear()
            for manager in self._managers.values():
                with contextlib.suppress(Exception):
                    manager.close()
            self._managers.clear()


def _one_line(exc: BaseException) -> str:
    """A VISA library's error as one line (pyvisa-sim puts a whole traceback in its message)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc).split("'Traceback", 1)[0].strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]

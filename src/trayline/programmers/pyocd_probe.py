"""pyOCD through its Python API: no subprocess, one open session per slot (spec §5.5).

pyOCD drives the Particle Debugger (a DAPLink / CMSIS-DAP probe) directly from
Python, so this backend keeps one session open for the life of the programmer
instead of starting a tool per operation:

==============  ======================================================================
probes          ``ConnectHelper.get_all_connected_probes(blocking=False)``
open            ``ConnectHelper.session_with_chosen_probe(unique_id=…, blocking=False,
                target_override="nrf52840", auto_unlock=False, frequency=…,
                connect_mode="under-reset" on the STM32)`` then ``session.open()``
read memory     ``session.target.read_memory_block8(addr, n)``
write           ``FileProgrammer(session, chip_erase="sector", no_reset=True)
                .program(file, file_format="bin", base_address=addr)``, then read-back
reset           ``session.target.reset()``
==============  ======================================================================

nRF52840 is built into pyOCD; the STM32F205 needs the Keil STM32F2 CMSIS pack
(``pyocd pack install stm32f205rg``) and its target name is UNCONFIRMED
(``stm32f205rgyx`` assumed, override with the ``target`` option).

Protection: pyOCD *unlocks a locked nRF52 by mass-erasing it* unless told not
to (session option ``auto_unlock``, default True). This backend always opens
with ``auto_unlock=False``, checks ``target.is_locked()`` where the target has
it, and reopens with ``auto_unlock=True`` only when the slot's policy allows it.

The pyOCD calls go through two seams (``connect`` and ``file_programmer``) so
tests run against a fake session with pyOCD's API shape; a separate test checks
that those names exist in the installed pyOCD.

Options: ``target`` (pyOCD target name), ``frequency`` (Hz, default 4000000).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Unpack, cast

from trayline.programmers.base import (
    DeviceNotAnswering,
    ProbeInfo,
    ProbeNotFound,
    ProgrammerError,
    ProtectedDevice,
    TargetNotHalted,
    ToolFailed,
    ToolMissing,
)
from trayline.programmers.memory_backend import SWD_CAPABILITIES, MemoryProgrammer
from trayline.programmers.opening import SlotArgs, only_probe, slot_args
from trayline.programmers.registry import Backend, OpenRequest

__all__ = ["BACKENDS", "PyOcdProgrammer", "PyOcdSession", "PyOcdTarget", "open_pyocd"]


class PyOcdTarget(Protocol):
    """The part of ``pyocd.core.soc_target.SoCTarget`` this backend uses."""

    def read_memory_block8(self, addr: int, size: int) -> Sequence[int]: ...

    def reset(self) -> None: ...


class PyOcdSession(Protocol):
    """The part of ``pyocd.core.session.Session`` this backend uses."""

    @property
    def target(self) -> PyOcdTarget: ...

    def open(self) -> None: ...

    def close(self) -> None: ...


Connect = Callable[[str, str, Mapping[str, Any]], PyOcdSession | None]
"""``(unique_id, target_override, options) -> session`` (``None`` = no such probe)."""
FileProgrammerFactory = Callable[[PyOcdSession], Any]


def _pyocd_connect(unique_id: str, target: str, options: Mapping[str, Any]) -> PyOcdSession | None:
    from pyocd.core.helpers import ConnectHelper

    session = ConnectHelper.session_with_chosen_probe(
        blocking=False,
        unique_id=unique_id,
        auto_open=False,
        target_override=target,
        options=dict(options),
    )
    return cast(PyOcdSession | None, session)


def _pyocd_file_programmer(session: PyOcdSession) -> Any:
    from pyocd.flash.file_programmer import FileProgrammer

    return FileProgrammer(session, chip_erase="sector", no_reset=True)


_TARGET_ERRORS = frozenset(
    {"TransferError", "TransferFaultError", "TransferTimeoutError", "CoreRegisterAccessError"}
)


def _translate(exc: Exception, slot: str, during: str) -> ProgrammerError:
    """pyOCD's exception classes → the protocol's errors (by class name: pyOCD is optional)."""
    name = type(exc).__name__
    text = f"pyOCD {during}: {name}: {exc}"
    if "lock" in str(exc).lower() or "approtect" in str(exc).lower():
        return ProtectedDevice(f"{text}; nothing was erased", slot=slot)
    if name in ("ProbeError", "ProbeDisconnected"):
        return ProbeNotFound(text, slot=slot)
    if name in _TARGET_ERRORS:
        return TargetNotHalted(f"{text} (powered? in DFU mode? SWD ribbon seated?)", slot=slot)
    if name == "TimeoutError":
        return DeviceNotAnswering(text, slot=slot)
    return ToolFailed(text, slot=slot)


class PyOcdProgrammer(MemoryProgrammer):
    """One probe, one open pyOCD session, one slot."""

    name = "pyocd"
    capabilities = SWD_CAPABILITIES

    def __init__(
        self,
        probe: ProbeInfo,
        *,
        connect: Connect = _pyocd_connect,
        file_programmer: FileProgrammerFactory = _pyocd_file_programmer,
        target: str | None = None,
        frequency: int = 4_000_000,
        **slot: Unpack[SlotArgs],
    ) -> None:
        super().__init__(probe, **slot)
        self._connect = connect
        self._file_programmer = file_programmer
        self.target_name = target or self.mcu.pyocd_target
        self.frequency = frequency
        self._session: PyOcdSession | None = None

    def session_options(self, *, unlock: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"auto_unlock": unlock, "frequency": self.frequency}
        if self.mcu.connect_under_reset:
            options["connect_mode"] = "under-reset"
        return options

    def connect(self, *, unlock: bool = False) -> None:
        """Open the session; a locked chip is :class:`ProtectedDevice` unless ``unlock``."""
        self._close()
        options = self.session_options(unlock=unlock)
        try:
            session = self._connect(self.probe.probe_id, self.target_name, options)
            if session is None:
                raise ProbeNotFound(f"pyOCD finds no probe {self.probe.probe_id!r}", slot=self.slot)
            session.open()
        except ProgrammerError:
            raise
        except Exception as exc:
            raise _translate(exc, self.slot, "connect") from exc
        is_locked = getattr(session.target, "is_locked", None)
        if callable(is_locked) and is_locked():
            session.close()
            raise ProtectedDevice(
                "APPROTECT is on; nothing was erased (set allow_unlock on this slot to let pyOCD "
                "mass-erase and unlock it)",
                slot=self.slot,
            )
        self._session = session

    def _live(self) -> PyOcdSession:
        if self._session is None:
            self.connect()
        assert self._session is not None
        return self._session

    def _read(self, address: int, length: int) -> bytes:
        session = self._live()
        try:
            return bytes(session.target.read_memory_block8(address, length))
        except Exception as exc:
            raise _translate(exc, self.slot, f"read {length} bytes at {address:#010x}") from exc

    def _write(self, address: int, path: Path, data: bytes, verify: bool) -> bool:
        session = self._live()
        try:
            programmer = self._file_programmer(session)
            programmer.program(io.BytesIO(data), file_format="bin", base_address=address)
        except Exception as exc:
            raise _translate(exc, self.slot, f"write at {address:#010x}") from exc
        return False  # pyOCD's load has no verify: the base class reads back

    def _reset(self) -> None:
        try:
            self._live().target.reset()
        except Exception as exc:
            raise _translate(exc, self.slot, "reset") from exc

    def _recover(self) -> None:
        """Reopen with pyOCD's auto_unlock (CTRL-AP mass erase): only called under allow_unlock."""
        self._close()
        self.connect(unlock=True)

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            # Closing a dead probe must not mask the error that brought us here.
            with contextlib.suppress(Exception):
                session.close()


def _all_probes() -> list[tuple[str, str]]:
    try:
        from pyocd.core.helpers import ConnectHelper
    except ImportError as exc:
        raise ToolMissing(f"pyOCD is not installed ({exc}): pip install pyocd") from exc
    probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    return [(str(p.unique_id), str(p.description)) for p in probes]


def open_pyocd(
    request: OpenRequest,
    *,
    connect: Connect = _pyocd_connect,
    file_programmer: FileProgrammerFactory = _pyocd_file_programmer,
    probes: Callable[[], list[tuple[str, str]]] = _all_probes,
) -> PyOcdProgrammer:
    """The registry's ``open``: one probe named or exactly one attached, then connect."""
    prog = PyOcdProgrammer(
        ProbeInfo("pyocd", request.probe_id, "CMSIS-DAP probe via pyOCD"),
        **slot_args(request),
        connect=connect,
        file_programmer=file_programmer,
        target=request.options.get("target"),
        frequency=int(request.number("frequency", 4_000_000)),
    )
    if not request.probe_id:
        found = probes()
        only_probe(
            [uid for uid, _ in found],
            slot=request.slot,
            what="probe",
            none="pyOCD sees no debug probe",
        )
        uid, description = found[0]
        prog.probe = ProbeInfo("pyocd", uid, description or "CMSIS-DAP probe via pyOCD")
    prog._guarded(prog.connect)
    return prog


def _list() -> list[ProbeInfo]:
    return [ProbeInfo("pyocd", uid, description) for uid, description in _all_probes()]


BACKENDS = (
    Backend(
        name="pyocd",
        open=open_pyocd,
        list_probes=_list,
        capabilities=SWD_CAPABILITIES,
        description="pyOCD's Python API (CMSIS-DAP / Particle Debugger; nRF52840 built in)",
        options=frozenset({"target", "frequency"}),
    ),
)

"""pyOCD backend against a fake session with pyOCD's API shape, and the names checked in pyocd."""

from __future__ import annotations

import inspect
import io
from collections.abc import Mapping
from typing import Any

import pytest

from trayline.programmers.base import (
    ProbeNotFound,
    ProtectedDevice,
    SeveralProbes,
    TargetNotHalted,
    VerifyFailed,
)
from trayline.programmers.pyocd_probe import open_pyocd
from trayline.programmers.registry import OpenRequest

from .memimage import FlashImage


class TransferFaultError(Exception):
    """Same class name as pyocd.core.exceptions.TransferFaultError (mapped by name)."""


class FakeTarget:
    def __init__(self, flash: FlashImage, ids: FlashImage, *, locked: bool) -> None:
        self.flash, self.ids, self.locked = flash, ids, locked
        self.resets = 0
        self.flip_next_write = False

    def _mem(self, addr: int) -> FlashImage:
        return self.ids if addr >= self.ids.base else self.flash

    def read_memory_block8(self, addr: int, size: int) -> list[int]:
        if self.locked:
            raise TransferFaultError(f"memory transfer fault @ {addr:#010x}")
        return list(self._mem(addr).read(addr, size))

    def write_memory_block8(self, addr: int, data: list[int]) -> None:
        self._mem(addr).write(addr, bytes(data))

    def reset(self) -> None:
        self.resets += 1

    def is_locked(self) -> bool:
        return self.locked


class FakeSession:
    def __init__(self, target: FakeTarget, options: Mapping[str, Any]) -> None:
        self.target = target
        self.options = dict(options)
        self.opened = self.closed = False

    def open(self) -> None:
        if self.options.get("auto_unlock") and self.target.locked:
            self.target.flash.data[:] = b"\xff" * len(self.target.flash.data)  # mass erase
            self.target.locked = False
        self.opened = True

    def close(self) -> None:
        self.closed = True


class FakeFileProgrammer:
    """pyocd.flash.file_programmer.FileProgrammer's shape: program(file, file_format, **kw)."""

    def __init__(self, session: FakeSession) -> None:
        self.session = session

    def program(
        self, file_or_path: io.BytesIO, file_format: str | None = None, **kwargs: Any
    ) -> None:
        assert file_format == "bin"
        data = bytearray(file_or_path.read())
        if self.session.target.flip_next_write:
            data[10] ^= 0x01
        self.session.target.write_memory_block8(kwargs["base_address"], list(data))


class Rig:
    def __init__(self, *, locked: bool = False) -> None:
        flash = FlashImage(0, 0x100000)
        ids = FlashImage(0x10000000, 0x1000)
        ids.write(0x10000060, bytes.fromhex("8a3c12f077c21e5b"))
        self.target = FakeTarget(flash, ids, locked=locked)
        self.sessions: list[FakeSession] = []
        self.connects: list[tuple[str, str, dict[str, Any]]] = []

    def connect(self, unique_id: str, target: str, options: Mapping[str, Any]) -> FakeSession:
        self.connects.append((unique_id, target, dict(options)))
        session = FakeSession(self.target, options)
        self.sessions.append(session)
        return session


def _open(
    rig: Rig,
    *,
    probe: str = "0240000032044e45",
    allow_unlock: bool = False,
    probes: list[tuple[str, str]] | None = None,
    platform: int = 13,
):
    from trayline.programmers.base import SlotPolicy

    request = OpenRequest(
        probe_id=probe,
        slot="slot 8",
        platform_id=platform,
        policy=SlotPolicy(allow_unlock=allow_unlock),
    )
    return open_pyocd(
        request,
        connect=rig.connect,
        file_programmer=FakeFileProgrammer,
        probes=lambda: probes or [],
    )


def test_session_options_and_device_id() -> None:
    rig = Rig()
    with _open(rig) as prog:
        assert prog.read_device_id() == "e00fce688a3c12f077c21e5b"
    assert rig.connects == [
        ("0240000032044e45", "nrf52840", {"auto_unlock": False, "frequency": 4000000})
    ]
    assert rig.sessions[0].closed


def test_electron_connects_under_reset_with_pack_target() -> None:
    rig = Rig()
    _open(rig, platform=10).close()
    assert rig.connects[0][1:] == (
        "stm32f205rgyx",
        {"auto_unlock": False, "frequency": 4000000, "connect_mode": "under-reset"},
    )


def test_write_then_read_back_and_scan() -> None:
    rig = Rig()
    from firmware.modulekit import build_module

    user = build_module(
        platform=13, function=5, index=2, version=6, start=0xB4000, dep=(4, 1, 4200), body=1024
    )
    with _open(rig) as prog:
        result = prog.write_module(0xB4000, user)
        assert result.verified
        (found,) = prog.read_modules()
        assert (found.function, found.index, found.valid) == (5, 2, True)
        prog.reset()
    assert rig.target.resets == 1


def test_bit_flip_on_write_is_caught() -> None:
    rig = Rig()
    rig.target.flip_next_write = True
    with (
        _open(rig) as prog,
        pytest.raises(VerifyFailed, match=r"slot 8: read-back differs at 0x000b400a"),
    ):
        prog.write_module(0xB4000, b"\x00" * 64)


def test_locked_chip_is_refused_and_not_erased() -> None:
    rig = Rig(locked=True)
    rig.target.flash.write(0x30000, b"\x12" * 16)
    with pytest.raises(ProtectedDevice, match="slot 8: APPROTECT is on; nothing was erased"):
        _open(rig)
    assert rig.target.flash.read(0x30000, 16) == b"\x12" * 16
    assert all(not c[2]["auto_unlock"] for c in rig.connects)


def test_locked_chip_is_unlocked_when_policy_allows() -> None:
    rig = Rig(locked=True)
    with _open(rig, allow_unlock=True) as prog:
        assert prog.read_device_id().startswith("e00fce68")
    assert [c[2]["auto_unlock"] for c in rig.connects] == [False, True, False]
    assert rig.target.locked is False


def test_no_probe_several_probes() -> None:
    with pytest.raises(ProbeNotFound, match="slot 8: pyOCD sees no debug probe"):
        _open(Rig(), probe="")
    with pytest.raises(SeveralProbes, match=r"slot 8: 2 probes attached \(A, B\)"):
        _open(Rig(), probe="", probes=[("A", "DAPLink"), ("B", "DAPLink")])


def test_named_probe_absent() -> None:
    with pytest.raises(ProbeNotFound, match="slot 8: pyOCD finds no probe 'X'"):
        open_pyocd(
            OpenRequest(probe_id="X", slot="slot 8", platform_id=13),
            connect=lambda *a: None,
            file_programmer=FakeFileProgrammer,
        )


def test_transfer_fault_is_target_not_halted() -> None:
    rig = Rig()
    with _open(rig) as prog:
        rig.target.locked = True  # reads now fault, as an unpowered target's do
        rig.target.is_locked = lambda: False  # type: ignore[method-assign]
        with pytest.raises(TargetNotHalted, match="slot 8: pyOCD read 8 bytes"):
            prog.read_device_id()


def test_the_names_exist_in_the_installed_pyocd() -> None:
    from pyocd.core import exceptions
    from pyocd.core.helpers import ConnectHelper
    from pyocd.core.soc_target import SoCTarget
    from pyocd.flash.file_programmer import FileProgrammer
    from pyocd.target.builtin import BUILTIN_TARGETS

    params = inspect.signature(ConnectHelper.session_with_chosen_probe).parameters
    assert {"blocking", "unique_id", "auto_open", "options"} <= set(params)
    assert "unique_id" in inspect.signature(ConnectHelper.get_all_connected_probes).parameters
    assert {"chip_erase", "no_reset"} <= set(inspect.signature(FileProgrammer).parameters)
    assert {"file_or_path", "file_format"} <= set(
        inspect.signature(FileProgrammer.program).parameters
    )
    for name in ("read_memory_block8", "write_memory_block8", "reset"):
        assert callable(getattr(SoCTarget, name))
    assert "nrf52840" in BUILTIN_TARGETS
    assert "stm32f205rgyx" not in BUILTIN_TARGETS  # needs the CMSIS pack (spec §5.5)
    for name in ("ProbeError", "TransferFaultError", "TimeoutError"):
        assert hasattr(exceptions, name)
    from pyocd.core.options import OPTIONS_INFO

    assert {"auto_unlock", "connect_mode", "frequency"} <= set(OPTIONS_INFO)


def test_probe_timeout_is_device_not_answering() -> None:
    from trayline.programmers.base import DeviceNotAnswering

    class TimeoutError(Exception):  # the class name pyocd.core.exceptions uses
        pass

    rig = Rig()
    with _open(rig) as prog:

        def stuck(addr: int, size: int) -> list[int]:
            raise TimeoutError("Timeout waiting for probe response")

        rig.target.read_memory_block8 = stuck  # type: ignore[method-assign]
        with pytest.raises(DeviceNotAnswering, match=r"slot 8: pyOCD read .*: TimeoutError"):
            prog.read_memory(0x30000, 16)

"""The backend registry: names, lazy built-ins, option checking, registration."""

from __future__ import annotations

import re

import pytest

from trayline.programmers import registry
from trayline.programmers.base import Capability, ProbeInfo, Programmer
from trayline.programmers.registry import (
    Backend,
    BadBackendOption,
    OpenRequest,
    UnknownBackend,
    open_programmer,
    register_backend,
)


def _fake_backend(name: str, opened: list[OpenRequest]) -> Backend:
    def _open(request: OpenRequest) -> Programmer:
        opened.append(request)
        raise RuntimeError("stop here")

    return Backend(
        name=name,
        open=_open,
        list_probes=lambda: [ProbeInfo(name, "P1")],
        capabilities=frozenset({Capability.RESET}),
        options=frozenset({"speed"}),
    )


def test_unknown_backend_lists_the_valid_names() -> None:
    with pytest.raises(UnknownBackend, match=r"choose one of: .*openocd"):
        registry.get_backend("opencd")


def test_registered_backend_is_opened_with_the_request() -> None:
    opened: list[OpenRequest] = []
    register_backend(_fake_backend("test-fake-1", opened))
    with pytest.raises(RuntimeError, match="stop here"):
        open_programmer(
            "test-fake-1", "P1", slot="slot 2", platform_id=13, options={"speed": "4000"}
        )
    (request,) = opened
    assert (request.probe_id, request.slot, request.platform_id) == ("P1", "slot 2", 13)
    assert request.option("speed", "1000") == "4000"
    assert request.policy.allow_unlock is False
    assert registry.list_probes("test-fake-1") == [ProbeInfo("test-fake-1", "P1")]
    assert "test-fake-1" in registry.backend_names()


def test_unknown_option_is_refused_before_opening() -> None:
    opened: list[OpenRequest] = []
    register_backend(_fake_backend("test-fake-2", opened))
    with pytest.raises(BadBackendOption, match="slot 4: backend 'test-fake-2' has no option spede"):
        open_programmer("test-fake-2", "P1", slot="slot 4", platform_id=13, options={"spede": "1"})
    assert opened == []


def test_double_registration_is_refused() -> None:
    register_backend(_fake_backend("test-fake-3", []))
    with pytest.raises(ValueError, match="already registered"):
        register_backend(_fake_backend("test-fake-3", []))
    register_backend(_fake_backend("test-fake-3", []), replace=True)


@pytest.mark.parametrize(
    "name",
    ["openocd", "nrfjprog", "jlink", "pyocd", "particle-usb", "daplink-drive", "stm32-programmer"],
)
def test_builtin_backends_load_lazily(name: str) -> None:
    backend = registry.get_backend(name)
    assert backend.name == name
    assert backend.capabilities


def test_list_all_probes_reports_problems_per_backend() -> None:
    from trayline.programmers.base import ToolMissing

    def missing() -> list[ProbeInfo]:
        raise ToolMissing("Demo tool not found: install it")

    register_backend(
        Backend(
            "test-fake-4",
            lambda r: None,
            lambda: [ProbeInfo("test-fake-4", "P9")],  # type: ignore[arg-type,return-value]
            frozenset({Capability.RESET}),
        )
    )
    register_backend(
        Backend(
            "test-fake-5",
            lambda r: None,
            missing,  # type: ignore[arg-type,return-value]
            frozenset({Capability.RESET}),
        )
    )
    probes, problems = registry.list_all_probes(["test-fake-4", "test-fake-5", "nope"])
    assert probes == [ProbeInfo("test-fake-4", "P9")]
    assert problems["test-fake-5"] == "Demo tool not found: install it"
    assert "unknown programmer backend 'nope'" in problems["nope"]


@pytest.mark.parametrize(
    ("backend", "platform", "options", "words"),
    [
        ("openocd", 13, {"speed": "fast"}, "option speed='fast' is not a number"),
        ("openocd", 13, {"interface": "ftdi"}, "openocd interface 'ftdi' is not one of"),
        ("openocd", 13, {"session": "telnet"}, "session must be oneshot or tcl"),
        ("openocd", 13, {"timeout": "-5"}, "option timeout='-5' must be positive"),
        ("nrfjprog", 10, {}, "nrfjprog programs nRF52 chips only"),
        ("stm32-programmer", 23, {}, "Electron's STM32 only"),
        ("jlink", 13, {"sped": "4000"}, "backend 'jlink' has no option sped"),
        ("daplink-drive", 10, {}, "Gen 3 (nRF52840) only"),
        ("openocd", 32, {}, "platform 32 (p2) cannot be programmed over SWD"),
    ],
)
def test_configuration_is_refused_before_any_tool_runs(
    backend: str,
    platform: int,
    options: dict[str, str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
) -> None:
    def no_tools(*args: object, **kwargs: object) -> object:
        raise AssertionError("a tool ran before the configuration was checked")

    monkeypatch.setattr("trayline.programmers.tool.SubprocessRunner.__call__", no_tools)
    monkeypatch.setenv("PATH", "/nonexistent")
    if backend == "daplink-drive":
        options = {"mount": str(tmp_path)}
        (tmp_path / "DETAILS.TXT").write_text("Unique ID: 0240\n")  # type: ignore[operator]
    with pytest.raises(ValueError, match=re.escape(words)):
        open_programmer(backend, "", slot="slot 1", platform_id=platform, options=options)

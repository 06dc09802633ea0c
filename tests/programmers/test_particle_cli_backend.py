"""Particle CLI backend: command lines, colour-coded output parsed, failures typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.modulekit import build_module
from trayline.core.modules import parse_module
from trayline.programmers.base import (
    Capability,
    DeviceNotAnswering,
    ProbeInfo,
    ProbeNotFound,
    ProgrammerError,
    ProtectedDevice,
    SeveralProbes,
    SlotPolicy,
    SupportsSetupDone,
    ToolFailed,
    ToolTimeout,
    VerifyFailed,
)
from trayline.programmers.particle_cli import (
    PARTICLE_CLI,
    ParticleCliProgrammer,
    open_particle_cli,
    parse_inspect,
    parse_usb_list,
)
from trayline.programmers.tool import RawRun

from .fakes import FakeRunner, fake_tool, load_transcript, tool_request

DEVICE = "e00fce688a3c12f077c21e5b"


def _prog(
    tmp_path: Path, runner: FakeRunner, port: str | None = "/dev/ttyACM0"
) -> ParticleCliProgrammer:
    tool = fake_tool(PARTICLE_CLI, tmp_path, runner, slot="slot 6")
    return ParticleCliProgrammer(
        ProbeInfo("particle-usb", DEVICE, "", port),
        slot="slot 6",
        platform_id=23,
        policy=SlotPolicy(),
        tool=tool,
    )


def _user() -> bytes:
    return build_module(
        platform=23,
        function=5,
        index=2,
        version=6,
        start=0xB4000,
        dep=(4, 1, 4200),
        product=(23, 3),
        body=2048,
    )


def _inspect_with(module: bytes, *, integrity: str = "PASS") -> RawRun:
    parsed = parse_module(module)
    text = load_transcript("particle_cli/inspect").stdout
    text = text.replace(
        "2C5A37F3D6B1A0C19E4B8D7A6F5E4D3C2B1A09F8E7D6C5B4A39281706F5E4D3C", parsed.sha256.upper()
    )
    if integrity == "FAIL":
        sha = parsed.sha256.upper()
        text = text.replace(
            f"UUID: {sha}\n    Integrity: PASS", f"UUID: {sha}\n    Integrity: FAIL"
        )
    return RawRun(0, text)


def test_capabilities_are_honest() -> None:
    assert Capability.READ_MEMORY not in ParticleCliProgrammer.capabilities
    assert Capability.SETUP_DONE in ParticleCliProgrammer.capabilities


def test_identify_strips_colour_codes(tmp_path: Path) -> None:
    runner = FakeRunner(["particle_cli/identify"])
    found = _prog(tmp_path, runner).identify()
    assert found == {
        "device_id": DEVICE,
        "imei": "352753090000006",
        "iccid": "89014103211118510720",
        "device_os": "4.2.0",
    }
    assert runner.argvs == [["identify", "--port", "/dev/ttyACM0"]]


def test_read_modules_from_serial_inspect(tmp_path: Path) -> None:
    runner = FakeRunner(["particle_cli/inspect"])
    mods = _prog(tmp_path, runner).read_modules()
    assert runner.argvs == [["serial", "inspect", "--port", "/dev/ttyACM0"]]
    assert [(m.function, m.index, m.version, m.address) for m in mods] == [
        (2, 0, 1200, 0xF4000),
        (4, 1, 4200, 0x30000),
        (5, 2, 6, 0xB4000),
        (8, 0, 202, 0x1000),
    ]
    assert mods[2].sha256 == "2c5a37f3d6b1a0c19e4b8d7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c"
    assert mods[0].sha256 is None
    assert all(m.platform_id == 23 and m.valid for m in mods)


def test_raw_memory_is_not_offered(tmp_path: Path) -> None:
    with pytest.raises(ProgrammerError, match="slot 6: the particle CLI cannot read raw memory"):
        _prog(tmp_path, FakeRunner()).read_memory(0, 4)


def test_flash_checks_usb_flashes_and_verifies(tmp_path: Path) -> None:
    module = _user()
    runner = FakeRunner(
        ["particle_cli/usb-list-one", "particle_cli/flash-ok", _inspect_with(module)]
    )
    prog = _prog(tmp_path, runner)
    result = prog.write_module(0xB4000, module)
    path = prog._workdir / "module-000b4000.bin"  # type: ignore[operator]
    assert runner.argvs == [
        ["usb", "list"],
        ["flash", "--local", str(path)],
        ["serial", "inspect", "--port", "/dev/ttyACM0"],
    ]
    assert result.verified and result.bytes_written == len(module)


def test_flash_refused_with_two_devices_on_usb(tmp_path: Path) -> None:
    runner = FakeRunner(["particle_cli/usb-list-two"])
    with pytest.raises(SeveralProbes, match="slot 6: 2 Particle devices on USB"):
        _prog(tmp_path, runner).write_module(0xB4000, _user())
    assert len(runner.calls) == 1


def test_flash_that_does_not_show_up_intact_fails_verify(tmp_path: Path) -> None:
    module = _user()
    runner = FakeRunner(
        [
            "particle_cli/usb-list-one",
            "particle_cli/flash-ok",
            _inspect_with(module, integrity="FAIL"),
        ]
    )
    with pytest.raises(VerifyFailed, match="slot 6: after flashing, the device does not report"):
        _prog(tmp_path, runner).write_module(0xB4000, module)


def test_write_at_the_wrong_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProgrammerError, match="starts at 0x000b4000, asked to write it at"):
        _prog(tmp_path, FakeRunner()).write_module(0xD4000, _user())


@pytest.mark.parametrize(
    ("transcript", "error"),
    [
        ("particle_cli/no-device", ProbeNotFound),
        ("particle_cli/not-answering", DeviceNotAnswering),
        ("particle_cli/hang", ToolTimeout),
    ],
)
def test_read_failures(tmp_path: Path, transcript: str, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^slot 6: "):
        _prog(tmp_path, FakeRunner([transcript])).read_modules()


@pytest.mark.parametrize(
    ("transcript", "error"),
    [("particle_cli/protected", ProtectedDevice), ("particle_cli/flash-failed", ToolFailed)],
)
def test_flash_failures(tmp_path: Path, transcript: str, error: type[Exception]) -> None:
    runner = FakeRunner(["particle_cli/usb-list-one", transcript])
    with pytest.raises(error, match=r"^slot 6: "):
        _prog(tmp_path, runner).write_module(0xB4000, _user())


def test_setup_done_reset_and_dfu_command_lines(tmp_path: Path) -> None:
    runner = FakeRunner([RawRun(0, "Done.\n")] * 4)
    prog = _prog(tmp_path, runner, port=None)
    assert prog.set_setup_done() is True
    assert prog.set_setup_done(False) is True
    prog.reset()
    prog.enter_dfu()
    assert runner.argvs == [
        ["usb", "setup-done", DEVICE],
        ["usb", "setup-done", "--reset", DEVICE],
        ["usb", "reset", DEVICE],
        ["usb", "dfu", DEVICE],
    ]


def test_setup_done_not_needed_on_device_os_4(tmp_path: Path) -> None:
    runner = FakeRunner(["particle_cli/identify", "particle_cli/identify"])
    prog = _prog(tmp_path, runner)
    assert isinstance(prog, SupportsSetupDone)
    assert prog.set_setup_done() is False
    assert prog.get_setup_done() is True
    assert runner.argvs == [["identify", "--port", "/dev/ttyACM0"]] * 2


def test_open_with_a_port_identifies_the_device(tmp_path: Path) -> None:
    runner = FakeRunner(["particle_cli/identify"])
    request = tool_request(
        tmp_path, "particle", slot="slot 6", platform_id=23, probe_id="/dev/ttyACM3"
    )
    prog = open_particle_cli(request, runner=runner)
    assert (prog.probe.probe_id, prog.probe.port) == (DEVICE, "/dev/ttyACM3")


def test_open_with_a_bad_device_id(tmp_path: Path) -> None:
    request = tool_request(
        tmp_path, "particle", slot="slot 6", platform_id=23, probe_id="not-an-id"
    )
    with pytest.raises(ProbeNotFound, match=r"slot 6: .*not a device ID"):
        open_particle_cli(request, runner=FakeRunner())


def test_parsers_directly() -> None:
    assert parse_usb_list(load_transcript("particle_cli/usb-list-two").stdout) == [
        ("bsom-01", DEVICE, "B SoM, LISTENING"),
        ("<no name>", "e00fce68f1c2b3a4d5e6f708", "B SoM, DFU"),
    ]
    assert parse_inspect("Device: x\nPlatform: 13 - Boron\n\nModules\n") == []


def test_device_id_without_a_port_comes_from_usb_list(tmp_path: Path) -> None:
    runner = FakeRunner(["particle_cli/usb-list-two", "particle_cli/usb-list-one"])
    prog = _prog(tmp_path, runner, port=None)
    assert prog.read_device_id() == DEVICE
    prog.probe = ProbeInfo("particle-usb", "e00fce68000000000000abcd")
    with pytest.raises(
        ProbeNotFound, match="slot 6: device e00fce68000000000000abcd is not on USB"
    ):
        prog.read_device_id()
    assert runner.argvs == [["usb", "list"], ["usb", "list"]]

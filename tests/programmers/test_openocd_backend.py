"""OpenOCD backend: exact command lines, and recorded transcripts mapped to the right errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProgrammerError,
    ProtectedDevice,
    SeveralProbes,
    SlotPolicy,
    TargetNotHalted,
    ToolMissing,
    ToolTimeout,
    VerifyFailed,
)
from trayline.programmers.openocd import OPENOCD, OpenOcdProgrammer, open_openocd, parse_mdb
from trayline.programmers.registry import OpenRequest
from trayline.programmers.tool import RawRun

from .fakes import FakeRunner, expect_failure, fake_tool, load_transcript, tool_request

SN = "0F0000001B9A4E5E00000000"


def _prog(
    tmp_path: Path,
    runner: FakeRunner,
    *,
    platform: int = 23,
    interface: str = "cmsis-dap",
    serial: str = SN,
    allow_unlock: bool = False,
) -> OpenOcdProgrammer:
    tool = fake_tool(OPENOCD, tmp_path, runner, slot="slot 3")
    return OpenOcdProgrammer(
        ProbeInfo("openocd", serial),
        slot="slot 3",
        platform_id=platform,
        policy=SlotPolicy(allow_unlock=allow_unlock),
        tool=tool,
        interface=interface,
    )


NRF_BASE = [
    "-f",
    "interface/cmsis-dap.cfg",
    "-c",
    f"cmsis_dap_serial {SN}",
    "-c",
    "transport select swd",
    "-f",
    "target/nrf52.cfg",
    "-c",
    "adapter speed 1000",
    "-c",
    "init",
]


def test_device_id_nrf52_command_line_and_parse(tmp_path: Path) -> None:
    runner = FakeRunner(["openocd/nrf52-mdb-device-id"])
    with _prog(tmp_path, runner) as prog:
        assert prog.read_device_id() == "e00fce688a3c12f077c21e5b"
    assert runner.argvs == [[*NRF_BASE, "-c", "mdb 0x10000060 8", "-c", "exit"]]
    assert runner.calls[0].argv[0].endswith("/openocd")


def test_device_id_stm32_over_stlink_connects_under_reset(tmp_path: Path) -> None:
    runner = FakeRunner(["openocd/stm32-mdb-uid"])
    prog = _prog(
        tmp_path, runner, platform=10, interface="stlink", serial="37FF6D064E4B353422431143"
    )
    assert prog.read_device_id() == "360027000947343533383631"
    assert runner.argvs == [
        [
            "-f",
            "interface/stlink.cfg",
            "-c",
            "hla_serial 37FF6D064E4B353422431143",
            "-c",
            "transport select hla_swd",
            "-f",
            "target/stm32f2x.cfg",
            "-c",
            "adapter speed 1000",
            "-c",
            "reset_config srst_only srst_nogate connect_assert_srst",
            "-c",
            "init",
            "-c",
            "reset halt",
            "-c",
            "mdb 0x1fff7a10 12",
            "-c",
            "exit",
        ]
    ]


def test_jlink_interface_serial_command(tmp_path: Path) -> None:
    prog = _prog(tmp_path, FakeRunner(), interface="jlink", serial="51012345")
    assert prog.base_args()[:6] == [
        "-f",
        "interface/jlink.cfg",
        "-c",
        "jlink serial 51012345",
        "-c",
        "transport select swd",
    ]


def test_no_serial_means_no_serial_command(tmp_path: Path) -> None:
    prog = _prog(tmp_path, FakeRunner(), serial="")
    assert not any("cmsis_dap_serial" in a for a in prog.base_args())


def test_write_nrf52_uses_program_verify(tmp_path: Path) -> None:
    runner = FakeRunner(["openocd/nrf52-program-verify-ok"])
    prog = _prog(tmp_path, runner)
    result = prog.write_module(0xD4000, b"\x01" * 3316)
    path = prog.workdir() / "module-000d4000.bin"
    assert runner.argvs == [[*NRF_BASE, "-c", f"program {path} 0x000d4000 verify", "-c", "exit"]]
    assert (result.address, result.bytes_written, result.verified) == (0xD4000, 3316, True)
    prog.close()
    assert not path.exists()


def test_write_stm32_write_image_then_verify_image(tmp_path: Path) -> None:
    runner = FakeRunner(["openocd/stm32-write-image-ok"])
    prog = _prog(tmp_path, runner, platform=10, interface="stlink", serial="")
    prog.write_module(0x08080000, b"\x02" * 2780)
    path = prog.workdir() / "module-08080000.bin"
    assert runner.argvs[0][-6:] == [
        "-c",
        f"flash write_image erase unlock {path} 0x08080000",
        "-c",
        f"verify_image {path} 0x08080000",
        "-c",
        "exit",
    ]


def test_large_read_uses_dump_image(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 13

    def dump(argv: Sequence[str]) -> RawRun:
        command = next(a for a in argv if a.startswith("dump_image "))
        Path(command.split()[1]).write_bytes(payload[:3316])
        return load_transcript("openocd/nrf52-dump-image")

    runner = FakeRunner([dump])
    prog = _prog(tmp_path, runner)
    assert prog.read_memory(0xD4000, 3316) == payload[:3316]
    path = prog.workdir() / "read-000d4000-3316.bin"
    assert runner.argvs == [[*NRF_BASE, "-c", f"dump_image {path} 0x000d4000 3316", "-c", "exit"]]


def test_reset_runs_reset_run(tmp_path: Path) -> None:
    runner = FakeRunner([RawRun(0, "Open On-Chip Debugger 0.12.0\n")])
    _prog(tmp_path, runner).reset()
    assert runner.argvs == [[*NRF_BASE, "-c", "reset run", "-c", "exit"]]


@pytest.mark.parametrize(
    ("transcript", "error", "words"),
    [
        ("openocd/cmsis-dap-not-found", ProbeNotFound, "unable to find a matching CMSIS-DAP"),
        ("openocd/jlink-several-probes", SeveralProbes, "Multiple devices found"),
        ("openocd/nrf52-not-halted", TargetNotHalted, "DFU mode"),
        ("openocd/nrf52-ap-locked", ProtectedDevice, "nothing was erased"),
        ("openocd/nrf52-hang", ToolTimeout, "did not finish within 60 s"),
    ],
)
def test_failures_on_read_are_typed_and_name_the_slot(
    tmp_path: Path, transcript: str, error: type[Exception], words: str
) -> None:
    prog = _prog(tmp_path, FakeRunner([transcript]))
    caught = expect_failure(prog.read_device_id, error, slot="slot 3", words=words)
    assert getattr(caught, "transcript", "").startswith("$ ")


def test_verify_failure_on_write(tmp_path: Path) -> None:
    runner = FakeRunner(["openocd/nrf52-verify-failed"])
    with pytest.raises(VerifyFailed, match=r"slot 3: verify failed: checksum mismatch"):
        _prog(tmp_path, runner).write_module(0xD4000, b"\x00" * 100)


def test_stm32_readout_protection_is_refused(tmp_path: Path) -> None:
    runner = FakeRunner(["openocd/stm32-rdp-protected"])
    with pytest.raises(ProtectedDevice, match="slot 3: the chip is protected"):
        _prog(tmp_path, runner, platform=10, interface="stlink").read_memory(0x08080000, 24)
    assert len(runner.calls) == 1  # no unlock attempted


def test_protected_chip_is_recovered_only_when_policy_allows(tmp_path: Path) -> None:
    runner = FakeRunner(
        [
            "openocd/nrf52-ap-locked",
            RawRun(0, "Info : nRF52 device recovered\n"),
            "openocd/nrf52-mdb-device-id",
        ]
    )
    prog = _prog(tmp_path, runner, allow_unlock=True)
    assert prog.read_device_id() == "e00fce688a3c12f077c21e5b"
    assert runner.argvs[1] == [*NRF_BASE, "-c", "nrf52_recover", "-c", "exit"]


def test_write_outside_flash_is_refused_before_running(tmp_path: Path) -> None:
    runner = FakeRunner()
    with pytest.raises(ProgrammerError, match=r"slot 3: refusing to write .* outside internal"):
        _prog(tmp_path, runner).write_module(0x000FF000, b"\x00" * 0x2000)
    assert runner.calls == []


def test_parse_mdb_multiline_and_short() -> None:
    out = "0x00030000: " + "00 " * 32 + "\n0x00030020: 01 02 \n"
    assert parse_mdb(out, 0x30000, 34) == b"\x00" * 32 + b"\x01\x02"
    with pytest.raises(ValueError, match="printed 34 bytes, 40"):
        parse_mdb(out, 0x30000, 40)


def _sysfs(root: Path, serials: list[str]) -> Path:
    for i, serial in enumerate(serials):
        dev = root / f"1-{i + 1}"
        dev.mkdir(parents=True)
        (dev / "idVendor").write_text("0d28\n")
        (dev / "idProduct").write_text("0204\n")
        (dev / "serial").write_text(serial + "\n")
        (dev / "product").write_text("DAPLink CMSIS-DAP\n")
    return root


@pytest.mark.parametrize(
    ("serials", "error", "words"),
    [
        ([], ProbeNotFound, "no Particle Debugger attached"),
        (["A1", "B2"], SeveralProbes, "2 Particle Debuggers attached (A1, B2)"),
    ],
)
def test_open_without_serial_needs_exactly_one_probe(
    tmp_path: Path, serials: list[str], error: type[Exception], words: str
) -> None:
    sysfs = _sysfs(tmp_path / "usb", serials)
    request = tool_request(tmp_path, "openocd", slot="slot 7")
    expect_failure(
        lambda: open_openocd(request, runner=FakeRunner(), sysfs=sysfs),
        error,
        slot="slot 7",
        words=words,
    )


def test_open_picks_the_only_probe(tmp_path: Path) -> None:
    sysfs = _sysfs(tmp_path / "usb", ["0F0000001B9A4E5E00000000"])
    runner = FakeRunner(["openocd/nrf52-mdb-device-id"])
    request = tool_request(tmp_path, "openocd", slot="slot 7", speed="4000")
    with open_openocd(request, runner=runner, sysfs=sysfs) as prog:
        prog.read_device_id()
    assert f"cmsis_dap_serial {SN}" in runner.argvs[0]
    assert "adapter speed 4000" in runner.argvs[0]


def test_missing_tool_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("TRAYLINE_OPENOCD", raising=False)
    request = OpenRequest(probe_id="X", slot="slot 7", platform_id=13)
    with pytest.raises(ToolMissing, match=r"slot 7: OpenOCD not found: .*apt install openocd"):
        open_openocd(request, runner=FakeRunner(), sysfs=tmp_path)


def test_read_many_is_one_run(tmp_path: Path) -> None:
    out = "0x00028200: " + "ff " * 24 + "\n0x00030200: " + "00 " * 24 + "\n"
    runner = FakeRunner([RawRun(0, out)])
    prog = _prog(tmp_path, runner)
    got = prog.read_many([(0x28200, 24), (0x30200, 24)])
    assert got == [b"\xff" * 24, b"\x00" * 24]
    assert runner.argvs == [
        [*NRF_BASE, "-c", "mdb 0x00028200 24", "-c", "mdb 0x00030200 24", "-c", "exit"]
    ]


def test_verify_uses_verify_image(tmp_path: Path) -> None:
    ok = RawRun(0, "verified 64 bytes in 0.012s (5.2 KiB/s)\n")
    bad = load_transcript("openocd/nrf52-verify-failed")
    runner = FakeRunner([ok, bad])
    prog = _prog(tmp_path, runner)
    assert prog.verify(0xB4000, b"\x05" * 64) is True
    assert prog.verify(0xB4000, b"\x05" * 64) is False
    path = prog.workdir() / "verify-000b4000.bin"
    assert runner.argvs[0] == [*NRF_BASE, "-c", f"verify_image {path} 0x000b4000", "-c", "exit"]

"""nrfjprog backend: exact command lines, the hex it hands over, transcripts mapped to errors."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from intelhex import IntelHex

from trayline.programmers.base import (
    ProbeInfo,
    ProbeNotFound,
    ProtectedDevice,
    SeveralProbes,
    SlotPolicy,
    TargetNotHalted,
    ToolTimeout,
    VerifyFailed,
)
from trayline.programmers.nrfjprog import (
    NRFJPROG,
    NrfjprogProgrammer,
    open_nrfjprog,
    parse_ids,
    parse_memrd,
)
from trayline.programmers.registry import BadBackendOption, OpenRequest
from trayline.programmers.tool import RawRun

from .fakes import FakeRunner, expect_failure, fake_executable, fake_tool, load_transcript

SNR = "1050385234"


def _prog(
    tmp_path: Path, runner: FakeRunner, *, allow_unlock: bool = False, platform: int = 13
) -> NrfjprogProgrammer:
    tool = fake_tool(NRFJPROG, tmp_path, runner, slot="slot 5")
    return NrfjprogProgrammer(
        ProbeInfo("nrfjprog", SNR),
        slot="slot 5",
        platform_id=platform,
        policy=SlotPolicy(allow_unlock=allow_unlock),
        tool=tool,
    )


def test_device_id_command_line(tmp_path: Path) -> None:
    runner = FakeRunner(["nrfjprog/memrd-device-id"])
    assert _prog(tmp_path, runner).read_device_id() == "e00fce688a3c12f077c21e5b"
    assert runner.argvs == [["-f", "NRF52", "-s", SNR, "--memrd", "0x10000060", "--n", "8"]]


def test_unaligned_read_is_widened_and_trimmed(tmp_path: Path) -> None:
    runner = FakeRunner([RawRun(0, "0x000D4000: 03020100 07060504   |........|\n")])
    assert _prog(tmp_path, runner).read_memory(0xD4001, 6) == bytes([1, 2, 3, 4, 5, 6])
    assert runner.argvs[0][-4:] == ["--memrd", "0x000d4000", "--n", "8"]


def test_program_hands_over_a_hex_of_the_module(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    seen: dict[str, bytes] = {}

    def program(argv: Sequence[str]) -> RawRun:
        hex_path = argv[argv.index("--program") + 1]
        ih = IntelHex(io.StringIO(Path(hex_path).read_text()))
        seen["data"] = ih.tobinstr(start=0xD4000, size=len(data))
        return load_transcript("nrfjprog/program-verify-ok")

    runner = FakeRunner([program])
    prog = _prog(tmp_path, runner)
    result = prog.write_module(0xD4000, data)
    hex_path = prog.workdir() / "module-000d4000.hex"
    assert runner.argvs == [
        ["-f", "NRF52", "-s", SNR, "--program", str(hex_path), "--sectorerase", "--verify"]
    ]
    assert seen["data"] == data
    assert result.verified


def test_legacy_output_is_success_too(tmp_path: Path) -> None:
    runner = FakeRunner(["nrfjprog/program-ok-legacy"])
    assert _prog(tmp_path, runner).write_module(0xD4000, b"\x00" * 16).verified


def test_reset_command_line(tmp_path: Path) -> None:
    runner = FakeRunner([RawRun(0, "Applying system reset.\nRun.\n")])
    _prog(tmp_path, runner).reset()
    assert runner.argvs == [["-f", "NRF52", "-s", SNR, "--reset"]]


@pytest.mark.parametrize(
    ("transcript", "error", "words"),
    [
        ("nrfjprog/no-debugger", ProbeNotFound, "no debugger connected"),
        ("nrfjprog/not-halted", TargetNotHalted, "Could not connect to CPU core"),
        ("nrfjprog/protected", ProtectedDevice, "nothing was erased"),
        ("nrfjprog/hang", ToolTimeout, "was killed"),
    ],
)
def test_read_failures(tmp_path: Path, transcript: str, error: type[Exception], words: str) -> None:
    prog = _prog(tmp_path, FakeRunner([transcript]))
    expect_failure(prog.read_device_id, error, slot="slot 5", words=words)


def test_verify_failure(tmp_path: Path) -> None:
    with pytest.raises(VerifyFailed, match=r"slot 5: verify failed: .*Data does not match"):
        _prog(tmp_path, FakeRunner(["nrfjprog/verify-failed"])).write_module(0xD4000, b"\0" * 64)


def test_protected_then_recover_when_allowed(tmp_path: Path) -> None:
    runner = FakeRunner(["nrfjprog/protected", "nrfjprog/recover-ok", "nrfjprog/memrd-device-id"])
    assert _prog(tmp_path, runner, allow_unlock=True).read_device_id().startswith("e00fce68")
    assert runner.argvs[1] == ["-f", "NRF52", "-s", SNR, "--recover"]


def test_protected_never_recovers_by_default(tmp_path: Path) -> None:
    runner = FakeRunner(["nrfjprog/protected"])
    with pytest.raises(ProtectedDevice):
        _prog(tmp_path, runner).write_module(0xD4000, b"\0" * 64)
    assert len(runner.calls) == 1


def test_electron_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadBackendOption, match="nRF52 chips only"):
        _prog(tmp_path, FakeRunner(), platform=10)


@pytest.mark.parametrize(
    ("transcript", "error"),
    [("nrfjprog/ids-two", SeveralProbes), ("nrfjprog/ids-none", ProbeNotFound)],
)
def test_open_without_serial_needs_exactly_one_jlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transcript: str, error: type[Exception]
) -> None:
    runner = FakeRunner([transcript])
    monkeypatch.setenv("TRAYLINE_NRFJPROG", fake_executable(tmp_path, "nrfjprog"))
    with pytest.raises(error, match="slot 1: "):
        open_nrfjprog(OpenRequest(probe_id="", slot="slot 1", platform_id=23), runner=runner)
    assert runner.argvs == [["--ids"]]


def test_parsers() -> None:
    assert parse_ids(load_transcript("nrfjprog/ids-two").stdout) == ["1050385234", "1050067714"]
    with pytest.raises(ValueError, match="printed 8 bytes, 12"):
        parse_memrd("0x10000060: F0123C8A 5B1EC277   |.<..w..[|\n", 0x10000060, 12)


def test_verify_alone(tmp_path: Path) -> None:
    ok = RawRun(0, "[ #################### ]   0.020s | Verify file - Done verifying\n")
    runner = FakeRunner([ok, "nrfjprog/verify-failed"])
    prog = _prog(tmp_path, runner)
    assert prog.verify(0xD4000, b"\x01" * 32) is True
    assert prog.verify(0xD4000, b"\x01" * 32) is False
    hex_path = prog.workdir() / "verify-000d4000.hex"
    assert runner.argvs[0] == ["-f", "NRF52", "-s", SNR, "--verify", str(hex_path)]

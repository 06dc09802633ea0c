"""Recording a transcript with a real process, and replaying it through a backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from trayline.programmers.transcript import main

from .fakes import load_transcript


def test_record_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = tmp_path / "fake-openocd"
    tool.write_text(
        "#!/bin/sh\nprintf '0x10000060: 8a 3c 12 f0 77 c2 1e 5b \\n'\n"
        "echo 'Info : done' >&2\nexit 0\n"
    )
    tool.chmod(0o755)
    out = tmp_path / "rec.txt"
    code = main(
        [
            "--imitates",
            "fake openocd for the test",
            "--out",
            str(out),
            "--",
            str(tool),
            "-c",
            "mdb 0x10000060 8",
        ]
    )
    assert code == 0
    assert "recorded" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("# imitates fake openocd for the test\n# exit: 0\n0x10000060: 8a")
    # The fakes load it like any checked-in transcript.
    raw = load_transcript(out)
    assert raw.returncode == 0
    assert "8a 3c 12 f0" in raw.stdout and "Info : done" in raw.stdout


def test_refuses_to_overwrite_and_missing_tool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rec.txt"
    out.write_text("keep me")
    assert main(["--imitates", "x", "--out", str(out), "--", "true"]) == 2
    assert out.read_text() == "keep me"
    assert (
        main(
            [
                "--imitates",
                "x",
                "--out",
                str(tmp_path / "n.txt"),
                "--",
                str(tmp_path / "no-such-tool"),
            ]
        )
        == 2
    )
    assert "error:" in capsys.readouterr().err

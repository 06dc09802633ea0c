"""The shared tool runner with real processes: argv lists, timeouts that kill the group, ANSI."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from trayline.core.processes import process_alive
from trayline.programmers.base import ToolFailed, ToolMissing, ToolTimeout, VerifyFailed
from trayline.programmers.tool import (
    ErrorPattern,
    RawRun,
    SubprocessRunner,
    Tool,
    ToolRun,
    ToolSpec,
    classify,
    strip_ansi,
)

SPEC = ToolSpec(
    "Demo tool",
    ("trayline-demo-tool-that-does-not-exist",),
    "TRAYLINE_DEMO_TOOL",
    "Install it from the demo registry.",
)


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "tool.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_missing_tool_names_what_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAYLINE_DEMO_TOOL", raising=False)
    with pytest.raises(ToolMissing) as caught:
        Tool(SPEC, slot="slot 1").resolve()
    message = str(caught.value)
    assert message.startswith("slot 1: Demo tool not found: none of trayline-demo-tool")
    assert "TRAYLINE_DEMO_TOOL is not set. Install it from the demo registry." in message


def test_env_var_pointing_nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAYLINE_DEMO_TOOL", str(tmp_path / "nope"))
    with pytest.raises(
        ToolMissing, match="is not an executable file \\(from TRAYLINE_DEMO_TOOL\\)"
    ):
        Tool(SPEC).resolve()


def test_arguments_are_never_shell_parsed(tmp_path: Path) -> None:
    exe = _script(tmp_path, 'for a in "$@"; do echo "[$a]"; done\n')
    run = Tool(SPEC, executable=exe).run(["a b", "$(touch pwned)", "; rm -rf /"], timeout=10)
    assert run.output.splitlines() == ["[a b]", "[$(touch pwned)]", "[; rm -rf /]"]
    assert not (Path.cwd() / "pwned").exists()
    assert run.returncode == 0


def test_stderr_and_exit_code_are_kept(tmp_path: Path) -> None:
    exe = _script(tmp_path, "echo out; echo err >&2; exit 3\n")
    run = Tool(SPEC, executable=exe).run([], timeout=10)
    assert run.returncode == 3
    assert run.output == "out\n\nerr\n"
    assert run.transcript.endswith("[exit 3]\n")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    exe = _script(tmp_path, f"sleep 60 & echo $! > {pidfile}\necho started\nwait\n")
    with pytest.raises(ToolTimeout) as caught:
        Tool(SPEC, slot="slot 4", executable=exe).run([], timeout=1.5)
    assert "slot 4: Demo tool did not finish within 1.5 s and was killed" in str(caught.value)
    if not pidfile.exists():
        pytest.skip("the machine was too busy for the script to start its child in 1.5 s")
    assert "started" in caught.value.transcript
    child = int(pidfile.read_text())
    for _ in range(500):  # killed with its group; a zombie until something reaps it
        if not process_alive(child):
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"child {child} of the timed-out tool is still running")


def test_colour_codes_and_spinners_are_stripped() -> None:
    raw = "\x1b[?25l\r\x1b[K\x1b[36m⠋\x1b[39m Working\r\x1b[K\x1b[?25h\n"
    raw += "Your id is \x1b[1mabc\x1b[22m\r\n"
    assert strip_ansi(raw) == "\n⠋ Working\nYour id is abc\n"


def test_record_to_appends_transcripts(tmp_path: Path) -> None:
    exe = _script(tmp_path, "echo hello\n")
    log = tmp_path / "record.log"
    tool = Tool(SPEC, executable=exe, record_to=log)
    tool.run(["one"], timeout=10)
    tool.run(["two"], timeout=10)
    text = log.read_text()
    assert f"$ {exe} one\nhello\n" in text and f"$ {exe} two\nhello\n" in text
    assert len(tool.runs) == 2


def test_classify_orders_and_falls_back() -> None:
    patterns = (ErrorPattern.of(r"checksum mismatch", VerifyFailed, "verify failed: {0}"),)
    run = ToolRun(("t",), 1, "a\nError: checksum mismatch here\nb\n", 0.1)
    error = classify(run, patterns, slot="slot 2", tool="t")
    assert isinstance(error, VerifyFailed)
    assert str(error) == "slot 2: verify failed: Error: checksum mismatch here"
    unknown = classify(ToolRun(("t",), 2, "x\ny\nz\nw\n", 0.1), patterns, slot=None, tool="t")
    assert isinstance(unknown, ToolFailed) and str(unknown) == "t failed (exit 2): y | z | w"
    silent = classify(
        ToolRun(("t",), 0, "ok?\n", 0.1), patterns, slot=None, tool="t", success=re.compile("Done")
    )
    assert isinstance(silent, ToolFailed) and "did not report success" in str(silent)
    assert (
        classify(
            ToolRun(("t",), 0, "Done\n", 0.1),
            patterns,
            slot=None,
            tool="t",
            success=re.compile("Done"),
        )
        is None
    )


def test_subprocess_runner_returns_none_code_on_timeout(tmp_path: Path) -> None:
    exe = _script(tmp_path, "echo partial; sleep 30\n")
    raw = SubprocessRunner()([exe], timeout=0.3, stdin=None, cwd=None)
    assert raw == RawRun(None, "partial\n", "")

"""Test doubles for tool backends: recorded transcripts, a runner that plays them, a fake tool.

The shared fixture module of tests/programmers: every backend test builds its
tool with :func:`fake_tool`, its open request with :func:`tool_request`, and
checks a failure with :func:`expect_failure` (the error class, the slot first
in the message, the operator's words in it).

A transcript file (tests/programmers/transcripts/<tool>/<case>.txt) is what the
tool printed, preceded by header lines starting with ``# ``: the first says
which tool version or source it imitates, ``# exit: N`` gives the exit code
(``# exit: timeout`` makes the runner behave as if the timeout expired: no exit
code, the output so far).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from trayline.programmers.registry import OpenRequest
from trayline.programmers.tool import RawRun, Tool, ToolSpec

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


def load_transcript(name: str | Path) -> RawRun:
    """``openocd/nrf52-mdb-device-id`` (or a path) → the recorded output and exit code."""
    path = name if isinstance(name, Path) else TRANSCRIPTS / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    code: int | None = 0
    body_start = 0
    for i, line in enumerate(lines):
        if not line.startswith("# "):
            body_start = i
            break
        if line.startswith("# exit:"):
            value = line.split(":", 1)[1].strip()
            code = None if value == "timeout" else int(value)
    else:
        body_start = len(lines)
    assert lines[0].startswith("# imitates"), f"{name}: first line must say what it imitates"
    return RawRun(code, "".join(lines[body_start:]))


@dataclass
class Call:
    argv: tuple[str, ...]
    timeout: float
    stdin: str | None
    cwd: Path | None


Response = str | RawRun | Callable[[Sequence[str]], RawRun]


@dataclass
class FakeRunner:
    """Answers each run with the next response: a transcript name, a RawRun, or a callable."""

    responses: list[Response] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, cwd: Path | None
    ) -> RawRun:
        self.calls.append(Call(tuple(argv), timeout, stdin, cwd))
        assert self.responses, f"unexpected run: {list(argv)}"
        response = self.responses.pop(0)
        if isinstance(response, str):
            return load_transcript(response)
        if isinstance(response, RawRun):
            return response
        return response(argv)

    @property
    def argvs(self) -> list[list[str]]:
        """Each call's arguments without the executable."""
        return [list(c.argv[1:]) for c in self.calls]


def fake_executable(folder: Path, name: str) -> str:
    path = folder / name
    path.write_text("#!/bin/sh\nexit 99\n")
    path.chmod(0o755)
    assert os.access(path, os.X_OK)
    return str(path)


def fake_tool(spec: ToolSpec, tmp_path: Path, runner: FakeRunner, *, slot: str) -> Tool:
    """``spec``'s tool for ``slot``, resolved to a stand-in executable, run by ``runner``."""
    name = spec.executables[0]
    return Tool(spec, slot=slot, runner=runner, executable=fake_executable(tmp_path, name))


def tool_request(
    tmp_path: Path,
    executable: str,
    *,
    slot: str,
    platform_id: int = 13,
    probe_id: str = "",
    **options: str,
) -> OpenRequest:
    """An open request whose ``tool`` option points at a stand-in ``executable``."""
    return OpenRequest(
        probe_id=probe_id,
        slot=slot,
        platform_id=platform_id,
        options={"tool": fake_executable(tmp_path, executable), **options},
    )


def expect_failure(
    action: Callable[[], object], error: type[Exception], *, slot: str, words: str = ""
) -> Exception:
    """``action()`` raises ``error`` whose message starts with ``slot:`` and holds ``words``."""
    with pytest.raises(error) as caught:
        action()
    message = str(caught.value)
    assert message.startswith(f"{slot}: "), message
    assert words in message, message
    return caught.value

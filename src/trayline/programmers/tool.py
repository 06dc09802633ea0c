"""Run an external programming tool: find it, run an argv list with a timeout, keep the transcript.

Every command-line backend (OpenOCD, nrfjprog, JLinkExe, STM32CubeProgrammer,
the Particle CLI) needs the same shell around the tool, and getting it wrong
costs a line real time: a missing tool must say how to install it, a hung
probe must be killed (with its children — OpenOCD and the Particle CLI spawn
helpers) instead of blocking the slot forever, colour codes must not break a
parser, and what the tool printed must survive for the operator and the unit's
record. So:

* :class:`ToolSpec` names the tool, the executables it may be called, the
  environment variable that overrides the path, and the install hint;
* :class:`Tool` resolves the executable once (:class:`ToolMissing` otherwise),
  runs argument *lists* (never a shell string: file names with spaces or
  quotes cannot change the command), kills the whole process group on timeout
  (:class:`ToolTimeout` with the output so far), strips ANSI escapes and returns
  a :class:`ToolRun` whose :attr:`~ToolRun.transcript` is what a person would
  have seen;
* the process itself is started by a :class:`Runner`, so tests hand in a fake
  that returns recorded transcripts and the real :class:`SubprocessRunner` is
  used everywhere else;
* :func:`classify` turns output into the right
  :class:`~trayline.programmers.base.ProgrammerError` subclass from a backend's
  table of patterns, so every backend maps failures the same way;
  :func:`check_run` raises it (every backend's ``_run`` ends there) and
  :func:`match_failure` applies a table to any text (the DAPLink drive's
  ``FAIL.TXT`` uses it too).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from trayline.programmers.base import ProgrammerError, ToolFailed, ToolMissing, ToolTimeout
from trayline.programmers.registry import OpenRequest
from trayline.settings import environment, tool_path

__all__ = [
    "TOOL_OPTIONS",
    "ErrorPattern",
    "RawRun",
    "Runner",
    "SubprocessRunner",
    "Tool",
    "ToolRun",
    "ToolSpec",
    "check_run",
    "classify",
    "match_failure",
    "strip_ansi",
    "tool_for",
]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")


def strip_ansi(text: str) -> str:
    """Remove colour/cursor escapes (Particle CLI, JLinkExe); spinner ``\\r`` become newlines."""
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """How to find one external tool and what to tell a person who lacks it."""

    name: str
    executables: tuple[str, ...]
    """Names tried on PATH, in order (``JLinkExe`` on Linux/macOS, ``JLink.exe`` on Windows)."""
    env_var: str
    """An environment variable holding an explicit path (``TRAYLINE_OPENOCD``)."""
    install_hint: str


@dataclass(frozen=True, slots=True)
class RawRun:
    """What a :class:`Runner` returns: exit code (``None`` if killed on timeout) and output."""

    returncode: int | None
    stdout: str
    stderr: str = ""


class Runner(Protocol):
    """Starts one process; the seam tests replace with recorded transcripts."""

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, cwd: Path | None
    ) -> RawRun: ...


class SubprocessRunner:
    """The real runner: a new session per tool, so a timeout kills the tool and its children."""

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, cwd: Path | None
    ) -> RawRun:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            return RawRun(None, out or "", err or "")
        return RawRun(proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One finished run: the argv, exit code, cleaned output and how long it took."""

    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    @property
    def transcript(self) -> str:
        """``$ argv`` then the output then the exit code: what goes in logs and records."""
        return f"$ {' '.join(self.argv)}\n{self.output}\n[exit {self.returncode}]\n"


@dataclass(frozen=True, slots=True)
class ErrorPattern:
    """A line a tool prints when something specific went wrong, and what it means."""

    pattern: re.Pattern[str]
    error: type[ProgrammerError]
    message: str
    """What the operator reads; ``{0}`` is replaced by the matched line."""

    @classmethod
    def of(cls, regex: str, error: type[ProgrammerError], message: str) -> ErrorPattern:
        return cls(re.compile(regex, re.IGNORECASE | re.MULTILINE), error, message)


def match_failure(
    text: str,
    patterns: Sequence[ErrorPattern],
    *,
    slot: str | None,
    transcript: str,
) -> ProgrammerError | None:
    """The error the first matching pattern names, or ``None``: one table rule for all outputs.

    A tool's output (:func:`classify`) and a probe's own failure report (the
    DAPLink drive's ``FAIL.TXT``) are read the same way: backends order their
    tables from most to least specific, and ``{0}`` in the message becomes the
    line that matched.
    """
    for item in patterns:
        match = item.pattern.search(text)
        if match:
            line = _line_of(text, match.start())
            return item.error(item.message.format(line), slot=slot, transcript=transcript)
    return None


def classify(
    run: ToolRun,
    patterns: Sequence[ErrorPattern],
    *,
    slot: str | None,
    tool: str,
    success: re.Pattern[str] | None = None,
) -> ProgrammerError | None:
    """The error this run stands for, or ``None`` when it succeeded.

    The first matching pattern wins (:func:`match_failure`). A non-zero exit
    with no known pattern, or a zero exit without the ``success`` marker the
    caller expects, is :class:`ToolFailed` carrying the last lines of output:
    never a silent pass.
    """
    known = match_failure(run.output, patterns, slot=slot, transcript=run.transcript)
    if known is not None:
        return known
    if run.returncode != 0:
        tail = " | ".join(run.output.strip().splitlines()[-3:]) or "no output"
        return ToolFailed(
            f"{tool} failed (exit {run.returncode}): {tail}", slot=slot, transcript=run.transcript
        )
    if success is not None and not success.search(run.output):
        tail = " | ".join(run.output.strip().splitlines()[-3:]) or "no output"
        return ToolFailed(
            f"{tool} exited 0 but did not report success: {tail}",
            slot=slot,
            transcript=run.transcript,
        )
    return None


def check_run(
    run: ToolRun,
    patterns: Sequence[ErrorPattern],
    *,
    slot: str | None,
    tool: str,
    success: str | None = None,
    flags: int = 0,
) -> ToolRun:
    """``run`` when it succeeded, else raise what :func:`classify` makes of it.

    ``success`` is a regular expression the output must contain (compiled with
    ``flags``); every backend's ``_run`` ends here, so they all treat a missing
    success line the same way.
    """
    marker = re.compile(success, flags) if success else None
    error = classify(run, patterns, slot=slot, tool=tool, success=marker)
    if error is not None:
        raise error
    return run


def _line_of(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return text[start : end if end >= 0 else len(text)].strip()


@dataclass
class Tool:
    """One external tool, resolved and ready to run for one slot."""

    spec: ToolSpec
    slot: str | None = None
    runner: Runner = field(default_factory=SubprocessRunner)
    executable: str | None = None
    """An explicit path (backend option ``tool``); else ``spec.env_var``, else PATH."""
    environ: Mapping[str, str] = field(default_factory=environment)
    record_to: Path | None = None
    """When set, every run's transcript is appended here (see docs: recording a transcript)."""
    runs: list[ToolRun] = field(default_factory=list)
    _resolved: str | None = field(default=None, init=False, repr=False)

    def resolve(self) -> str:
        """The executable's path (looked up once); :class:`ToolMissing` says how to install it."""
        if self._resolved is None:
            self._resolved = self._lookup()
        return self._resolved

    def _lookup(self) -> str:
        explicit = self.executable or tool_path(self.spec.env_var, self.environ)
        if explicit:
            if Path(explicit).is_file() and os.access(explicit, os.X_OK):
                return explicit
            found = shutil.which(explicit)
            if found:
                return found
            raise ToolMissing(
                f"{self.spec.name}: {explicit!r} is not an executable file "
                f"(from {'the backend option' if self.executable else self.spec.env_var})",
                slot=self.slot,
            )
        for name in self.spec.executables:
            found = shutil.which(name)
            if found:
                return found
        raise ToolMissing(
            f"{self.spec.name} not found: none of {', '.join(self.spec.executables)} is on PATH "
            f"and {self.spec.env_var} is not set. {self.spec.install_hint}",
            slot=self.slot,
        )

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float,
        stdin: str | None = None,
        cwd: Path | None = None,
    ) -> ToolRun:
        """Run the tool with ``args``; :class:`ToolTimeout` after ``timeout`` seconds."""
        argv = (self.resolve(), *args)
        started = time.monotonic()
        raw = self.runner(argv, timeout=timeout, stdin=stdin, cwd=cwd)
        seconds = time.monotonic() - started
        output = strip_ansi(raw.stdout + (("\n" + raw.stderr) if raw.stderr else ""))
        code = -9 if raw.returncode is None else raw.returncode
        run = ToolRun(tuple(argv), code, output, seconds)
        self.runs.append(run)
        if self.record_to is not None:
            with self.record_to.open("a", encoding="utf-8") as fh:
                fh.write(run.transcript)
        if raw.returncode is None:
            raise ToolTimeout(
                f"{self.spec.name} did not finish within {timeout:g} s and was killed "
                "(probe hung, target held in reset, or the tool waits for input)",
                slot=self.slot,
                transcript=run.transcript,
            )
        return run


TOOL_OPTIONS = frozenset({"tool", "record"})
"""The backend options :func:`tool_for` reads; every tool backend accepts them."""


def tool_for(spec: ToolSpec, request: OpenRequest, runner: Runner | None = None) -> Tool:
    """A :class:`Tool` for one open request: its ``tool`` and ``record`` options applied.

    ``runner`` is for tests (a fake playing transcripts); the default runs processes.
    """
    record = request.options.get("record")
    return Tool(
        spec,
        slot=request.slot,
        runner=runner or SubprocessRunner(),
        executable=request.options.get("tool"),
        record_to=Path(record) if record else None,
    )

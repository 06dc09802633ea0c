"""The shell every command-line SWD backend shares: one tool, one error table, two timeouts.

OpenOCD, JLinkExe, nrfjprog and STM32CubeProgrammer are each driven the same
way: build an argument list for a few commands, run the tool
(:class:`~trayline.programmers.tool.Tool`: timeout, transcript), read the
output through the backend's table of known failures and insist on a success
line where the tool prints one. Only the argument list and the table differ.

:class:`ToolProgrammer` is that shell on top of
:class:`~trayline.programmers.memory_backend.MemoryProgrammer`: a subclass
names its table (``errors``) and how the tool calls itself in messages
(``tool_label``), and implements :meth:`ToolProgrammer.argv`. Reads are short
(``read_timeout``, 60 s); writes, dumps and verifies get ``write_timeout``
(the ``timeout`` option, 120 s by default). A backend's constructor takes its
own settings and passes the rest on as :class:`ToolArgs`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, NotRequired, Unpack

from trayline.programmers.base import ProbeInfo, ToolFailed, VerifyFailed
from trayline.programmers.memory_backend import MemoryProgrammer
from trayline.programmers.opening import SlotArgs
from trayline.programmers.tool import ErrorPattern, Tool, ToolRun, check_run

__all__ = ["ToolArgs", "ToolProgrammer"]


class ToolArgs(SlotArgs):
    """What every tool backend's constructor takes besides the probe (and its own settings)."""

    tool: Tool
    write_timeout: NotRequired[float]


class ToolProgrammer(MemoryProgrammer):
    """A memory backend whose every operation is one run of an external tool."""

    errors: ClassVar[tuple[ErrorPattern, ...]] = ()
    """Known failure lines, most specific first (:func:`~trayline.programmers.tool.classify`)."""
    tool_label: ClassVar[str] = "tool"
    """How messages name the program (``openocd``, ``JLinkExe``, ``nrfjprog`` …)."""

    def __init__(
        self,
        probe: ProbeInfo,
        *,
        tool: Tool,
        write_timeout: float = 120.0,
        **slot: Unpack[SlotArgs],
    ) -> None:
        super().__init__(probe, **slot)
        self.tool = tool
        self.write_timeout = write_timeout
        self.read_timeout = 60.0

    def argv(self, *commands: str) -> list[str]:
        """The tool's arguments (without the executable) that carry out ``commands``."""
        raise NotImplementedError

    def _run(self, *commands: str, timeout: float, success: str | None = None) -> ToolRun:
        """Run ``commands``; a known failure, a non-zero exit or no ``success`` line raises."""
        run = self.tool.run(self.argv(*commands), timeout=timeout)
        return check_run(run, self.errors, slot=self.slot, tool=self.tool_label, success=success)

    def _parsed(self, what: str, run: ToolRun, parse: Callable[[], bytes]) -> bytes:
        """``parse()``; a parser's complaint becomes :class:`ToolFailed` naming ``what``."""
        try:
            return parse()
        except ValueError as exc:
            raise ToolFailed(
                f"{self.tool_label} {what}: {exc}", slot=self.slot, transcript=run.transcript
            ) from exc

    def _verify_file(self, address: int, data: bytes) -> Path:
        """``data`` saved for the tool's own compare, after the flash-range check."""
        self._check_range(address, len(data))
        path = self.workdir() / f"verify-{address:08x}.bin"
        path.write_bytes(data)
        return path

    def _verified_by(self, *commands: str, success: str) -> bool:
        """The tool's own compare (no bulk read-back): False when it reports a mismatch.

        A protected chip is handled like any other operation (recovered only
        under ``allow_unlock``); every other failure still raises.
        """
        try:
            self._guarded(lambda: self._run(*commands, timeout=self.write_timeout, success=success))
        except VerifyFailed:
            return False
        return True

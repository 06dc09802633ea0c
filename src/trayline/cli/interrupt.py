"""Ctrl-C and SIGTERM for long commands: cancel the work cleanly, say how to resume, exit 130/143.

A command that works through a job (``provision run``, ``sims activate``) runs
its coroutine under :func:`run_interruptibly`. The first SIGINT or SIGTERM
cancels the coroutine: the engine marks the job ``interrupted`` after the
answers already received are committed, and the command prints one line —
"interrupted — run the same command again to resume" — and exits 130 (SIGINT)
or 143 (SIGTERM), the codes a shell gives a process those signals kill.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer

from trayline.cli.console import err

__all__ = ["INTERRUPTED", "Interrupted", "exit_interrupted", "run_interruptibly"]

T = TypeVar("T")
INTERRUPTED = "interrupted — run the same command again to resume"


class Interrupted(Exception):
    """The user (SIGINT) or the system (SIGTERM) asked the command to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def run_interruptibly(work: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(work())`` with SIGINT and SIGTERM turned into :class:`Interrupted`."""

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        received: list[int] = []

        def on_signal(signum: int) -> None:
            if not received:
                received.append(signum)
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await work()
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    return asyncio.run(main())


def exit_interrupted(exc: Interrupted) -> NoReturn:
    err.print(INTERRUPTED, markup=False, highlight=False)
    raise typer.Exit(exc.exit_code)

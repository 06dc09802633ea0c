"""Record what a programming tool prints, in the file format the backend tests replay.

When a new OpenOCD, nrfjprog, JLinkExe, STM32CubeProgrammer or Particle CLI
version changes its output, the way to keep the parsers honest is to run the
real tool once on a real probe and add what it printed as a test case. This
module does that run (through the same runner the backends use, so the argv is
never shell-parsed and a hang is killed) and writes::

    # imitates <what you say it is: tool version, probe, device>
    # exit: <code, or "timeout">
    <stdout, then stderr, exactly as printed — colour codes included>

Usage (a developer tool, not a station command)::

    python -m trayline.programmers.transcript \\
        --imitates "OpenOCD 0.12.0, Particle Debugger, B SoM in DFU mode" \\
        --out tests/programmers/transcripts/openocd/nrf52-mdb-device-id.txt \\
        -- openocd -f interface/cmsis-dap.cfg -c "transport select swd" \\
           -f target/nrf52.cfg -c init -c "mdb 0x10000060 8" -c exit

Then add a test that replays it with ``FakeRunner`` (see docs/programmers.md).
Exit codes: 0 recorded (whatever the tool's own exit code), 2 bad usage or the
tool could not be started.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from trayline.programmers.tool import RawRun, Runner, SubprocessRunner

__all__ = ["format_transcript", "main", "record"]


def format_transcript(imitates: str, raw: RawRun) -> str:
    """The test-file text for one run."""
    if "\n" in imitates or not imitates.strip():
        raise ValueError("--imitates must be one non-empty line")
    code = "timeout" if raw.returncode is None else str(raw.returncode)
    body = raw.stdout + (("\n" + raw.stderr) if raw.stderr else "")
    return f"# imitates {imitates.strip()}\n# exit: {code}\n{body}"


def record(
    argv: Sequence[str],
    *,
    imitates: str,
    out: Path,
    timeout: float,
    runner: Runner | None = None,
) -> RawRun:
    """Run ``argv`` once and write its transcript to ``out`` (refuses to overwrite)."""
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new name (transcripts are test data)")
    raw = (runner or SubprocessRunner())(list(argv), timeout=timeout, stdin=None, cwd=None)
    text = format_transcript(imitates, raw)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return raw


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trayline.programmers.transcript",
        description="Run a programming tool once and save its output as a test transcript.",
        epilog=(
            'Example: python -m trayline.programmers.transcript --imitates "nrfjprog 10.24.2, '
            'J-Link V11, Boron" --out tests/programmers/transcripts/nrfjprog/ids-one.txt '
            "-- nrfjprog --ids"
        ),
    )
    parser.add_argument("--imitates", required=True, help="one line: tool version, probe, device")
    parser.add_argument("--out", required=True, type=Path, help="the transcript file to write")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the tool's argv")
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        parser.error("give the tool's command line after --")
    try:
        raw = record(command, imitates=ns.imitates, out=ns.out, timeout=ns.timeout)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = "timed out" if raw.returncode is None else f"exited {raw.returncode}"
    print(f"{ns.out}: recorded ({command[0]} {state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

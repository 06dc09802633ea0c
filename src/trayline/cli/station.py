"""``trayline station run``: the terminal operator mode — scan, watch the slots, see PASS/FAIL.

Scans come from the keyboard-wedge scanner (one line per scan) or from
``--script FILE``; the slots run in parallel behind the scan prompt. The screen
shows a panel per slot (the unit, its step, a big PASS or FAIL with the reason
in plain words) and the last messages. ``--json`` prints one JSON summary at
the end instead of the live display.

Exit codes: 0 every unit handled ended ready; 1 some units failed (listed);
2 bad configuration or usage (nothing done); 4 store problem; 130 Ctrl-C;
143 SIGTERM. A unit interrupted by Ctrl-C, SIGTERM, SIGKILL or a power cut is
resumed from its last recorded step by the next ``station run``.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from trayline.cli import outbox
from trayline.cli.console import err, fail, out
from trayline.cli.line import LineOption
from trayline.cli.options import DbOption, open_db
from trayline.cli.token import TokenFileOption, resolve_token
from trayline.firmware.bundle import BundleError, get_bundle
from trayline.inputs import InputError
from trayline.particle.client import api_url_from_env
from trayline.particle.errors import InvalidApiUrl
from trayline.settings.line import ConfigError
from trayline.station.assembly import StationOptions, build_runner
from trayline.station.connectivity import ParticleCloudPresence
from trayline.station.line import Line, load_line
from trayline.station.prompts import (
    Prompt,
    PromptSource,
    QueuedPrompts,
    ScriptedPrompts,
    parse_answer,
)
from trayline.station.runner import Runner, SlotView

app = typer.Typer(
    help="The station: scan units, flash, test and verify them on several slots.\n\n"
    "Example: trayline station run --virtual tray/ --script scans.txt --json",
    no_args_is_help=True,
)

_COLOURS = {"pass": "green", "fail": "red", "working": "yellow", "idle": "grey50"}


def _load(config: Path) -> Line:
    try:
        line = load_line(config)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False)
        fail(f"{config}: {len(exc.problems)} problem(s) in the line configuration; nothing done")
    for warning in line.config.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    return line


def slot_panel(view: SlotView) -> Panel:
    colour = _COLOURS.get(view.state, "white")
    if view.state == "pass":
        body = Text("  P A S S  ", style="bold white on green", justify="center")
    elif view.state == "fail":
        body = Text.assemble(("  F A I L  \n", "bold white on red"), (view.reason or "", "red"))
    elif view.state == "working":
        body = Text(view.step or "…", style="yellow")
    else:
        body = Text("free — place a unit", style="grey50")
    title = f"slot {view.name}" + (f" · {view.serial}" if view.serial else "")
    return Panel(body, title=title, border_style=colour, width=38, height=5)


def render(runner: Runner, question: Prompt | None = None) -> Group:
    grid = Table.grid(padding=(0, 1))
    panels = [slot_panel(v) for v in runner.slots()]
    for i in range(0, len(panels), 2):
        grid.add_row(*panels[i : i + 2])
    lines = Text()
    for notice in runner.recent(6):
        style = {"error": "red", "warn": "yellow", "ok": "green"}.get(notice.level, "")
        lines.append(notice.text + "\n", style=style)
    parts: list[Panel | Table] = [grid]
    if question is not None:
        ask = Text.assemble((question.text, "bold"), ("\nscan YES or NO on the bench card", ""))
        parts.append(
            Panel(ask, title=f"question ({question.step})", border_style="yellow", width=77)
        )
    parts.append(Panel(lines, title="messages", width=77))
    return Group(*parts)


def _stdin_scans() -> Iterator[str]:
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _read_script(script: Path) -> tuple[list[str], list[str]]:
    """A script's scans, and its YES/NO lines as the answers to the prompts, in order.

    Answers are taken apart from the scans because a script is fed faster than
    any question is asked: the n-th YES/NO answers the n-th question.
    """
    try:
        text = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{script}: cannot read the script: {exc}")
    scans: list[str] = []
    answers: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        (answers if line.strip().upper() in ("YES", "NO") else scans).append(line)
    return scans, answers


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)


def _presence(line: Line, token_file: Path | None) -> ParticleCloudPresence | None:
    """The cloud the plan's cloud_online steps ask; None where the site cannot connect."""
    if line.config.connectivity_skipped:
        return None  # the warning was printed; the step is skipped with that reason
    try:
        api_url = api_url_from_env()
    except InvalidApiUrl as exc:
        fail(str(exc))
    token = resolve_token(token_file)
    return ParticleCloudPresence.connect(token, str(line.config.product), base_url=api_url)


class _Log:
    """Without the live screen (a pipe, --json): every message as a line on stderr, as it comes."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.shown = 0

    def flush(self) -> None:
        notices = self.runner.all_notices[self.shown :]
        self.shown += len(notices)
        for notice in notices:
            err.print(f"{notice.level}: {notice.text}", markup=False, highlight=False)


def _drive(runner: Runner, scans: Iterator[str], live: Live | None, prompts: QueuedPrompts) -> None:
    log = _Log(runner)

    def show() -> None:
        if live is None:
            log.flush()
        else:
            live.update(render(runner, prompts.waiting))

    runner.start()
    show()
    for scan in scans:
        runner.scan(scan)
        show()
    while not runner.wait_idle(timeout=0.2):
        show()
    show()


@app.command("run")
def run_command(
    config: Path = LineOption,
    virtual: Path | None = typer.Option(
        None, "--virtual", help="Use the virtual tray in DIR (trayline virtual tray/serve)."
    ),
    script: Path | None = typer.Option(
        None, "--script", help="Read scans and YES/NO answers from FILE instead of the scanner."
    ),
    tray: Path | None = typer.Option(None, "--tray", help="Tray list (serial → device ID)."),
    time_scale: float | None = typer.Option(
        None,
        "--time-scale",
        min=0,
        help="Virtual devices: real seconds per simulated second (0 = no waiting; "
        "default TRAYLINE_VIRTUAL_TIME_SCALE, else 1).",
    ),
    answers: str | None = typer.Option(None, "--answers", help="Answer every prompt: yes or no."),
    operator: str | None = typer.Option(None, "--operator", help="Operator name for the record."),
    cloud_check: bool = typer.Option(
        False,
        "--cloud-check",
        help="Run the plan's cloud_online steps against PARTICLE_API_URL with the token "
        "(PARTICLE_ACCESS_TOKEN or --token-file); without it they are skipped.",
    ),
    token_file: Path | None = TokenFileOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary at the end."),
    db: str | None = DbOption,
) -> None:
    """Run the station: scans in, units through the slots, PASS/FAIL out.

    Example: trayline station run -c trayline.toml --virtual tray/ --script scans.txt
    """
    line = _load(config)
    default = None
    if answers is not None:
        default = parse_answer(answers)
        if default is None:
            fail(f"--answers must be yes or no, not {answers!r}")
    if virtual is not None and not (virtual / "tray.csv").is_file():
        fail(f"{virtual}: not a virtual tray (no tray.csv); create one with trayline virtual tray")
    if virtual is not None and not (virtual / "ports.json").is_file():
        fail(
            f"{virtual}: its serial ports are not up; run `trayline virtual serve {virtual}` first"
        )
    with open_db(db) as store:
        try:
            for name in (line.config.bundles.test, line.config.bundles.production):
                get_bundle(store, name)
        except BundleError as exc:
            fail(f"{config}: [bundles]: {exc}")
        queued = QueuedPrompts()
        scans: Iterator[str] = _stdin_scans()
        prompts: PromptSource = queued
        if script is not None:
            lines, replies = _read_script(script)
            scans = iter(lines)
            prompts = ScriptedPrompts(replies, default=default)
        elif default is not None:
            prompts = ScriptedPrompts(default=default)
        presence = _presence(line, token_file) if cloud_check else None
        options = StationOptions(
            virtual_dir=virtual, tray_file=tray, operator=operator, time_scale=time_scale
        )
        try:
            runner = build_runner(
                store,
                line,
                options,
                prompts=prompts,
                answer=queued.answer,
                cloud_check=presence,
            )
        except InputError as exc:
            fail(str(exc))
        with outbox.delivering(store):  # issue 12: the outbox sender, if a webhook is set
            summary = _session(runner, scans, as_json, queued)
    _finish(summary, as_json)


def _session(
    runner: Runner, scans: Iterator[str], as_json: bool, prompts: QueuedPrompts
) -> dict[str, Any]:
    previous = signal.signal(signal.SIGTERM, _terminate)
    code = 0
    try:
        if as_json or not out.is_terminal:
            _drive(runner, scans, None, prompts)
        else:
            with Live(render(runner), console=out, refresh_per_second=8) as live:
                _drive(runner, scans, live, prompts)
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        code = int(exc.code or 143)
    finally:
        signal.signal(signal.SIGTERM, previous)
    busy = runner.stop(timeout=0.5 if code else 5.0)
    if code:
        err.print(f"stopped; units in slots {', '.join(busy) or '-'} resume at the next start")
        raise typer.Exit(code)
    return runner.summary()


def _finish(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        by = summary["by_status"]
        out.print(
            f"{summary['units']} units: {by.get('ready', 0)} ready, {by.get('failed', 0)} failed; "
            f"yield {summary['yield']}"
        )
        for item in summary["failed"]:
            out.print(f"  [red]FAIL[/red] {item['serial_number']}: {item['reason']}")
    if summary["by_status"].get("failed"):
        raise typer.Exit(1)


__all__ = ["app", "render", "slot_panel"]

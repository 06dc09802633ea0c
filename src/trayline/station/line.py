"""A line ready to run: ``trayline.toml`` read, its test plan parsed, errors with file:line.

:mod:`trayline.settings.line` checks the file's own schema; the ``[test_plan]``
table belongs to :mod:`trayline.station.testplan_config`, which reports a key
path (``test_plan.steps[2].measurements[0].low``). This module joins the two so
every problem an engineer sees names the file, the line and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from trayline.settings.line import ConfigError, LineConfig, load_line_config, locate_key
from trayline.station.labels import LabelConfig, LabelError, parse_label_config
from trayline.station.testplan import TestPlan
from trayline.station.testplan_config import TestPlanError, parse_test_plan

__all__ = ["Line", "load_line", "path_key"]

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Line:
    config: LineConfig
    plan: TestPlan
    label: LabelConfig | None = None
    """Where each ready unit's label goes; None when the line prints no labels."""


def path_key(path: str) -> tuple[str | int, ...]:
    """``test_plan.steps[2].low`` → ``("test_plan", "steps", 2, "low")``."""
    return tuple(int(index) if index else name for name, index in _PART.findall(path))


def _where(text: str, file: str, dotted: str) -> str:
    key = path_key(dotted)
    for end in range(len(key), 0, -1):
        line = locate_key(text, key[:end])
        if line is not None:
            return f"{file}:{line}"
    return file


def load_line(path: Path) -> Line:
    """The line at ``path``; :class:`ConfigError` with every problem, file:line and key."""
    config = load_line_config(path)
    try:
        plan = parse_test_plan(config.test_plan, base_dir=path.parent)
    except TestPlanError as exc:
        text = path.read_text(encoding="utf-8")
        raise ConfigError([f"{_where(text, str(path), exc.path)}: {exc}"]) from None
    if not plan.steps:
        raise ConfigError(
            [f"{path}: [test_plan] has no steps: add at least one [[test_plan.steps]]"]
        )
    label = None
    if config.label:
        try:
            label = parse_label_config(config.label)
        except LabelError as exc:
            dotted = str(exc).split(":", 1)[0]
            text = path.read_text(encoding="utf-8")
            raise ConfigError([f"{_where(text, str(path), dotted)}: {exc}"]) from None
    return Line(config, plan, label)

"""trayline.toml: every problem names file:line and key; the starter file is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from linekit import CONFIG

from trayline.core.skus import get_sku
from trayline.settings.line import ConfigError, format_group, parse_line_config
from trayline.station.line import load_line, path_key
from trayline.station.linefile import render_starter


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_line_config(text, "line.toml")
    return caught.value.problems


def test_starter_file_is_valid_for_every_sku_family(tmp_path: Path) -> None:
    for sku in ("BRN404", "ELC314", "B524", "ONE404"):
        path = tmp_path / f"{sku}.toml"
        path.write_text(render_starter(get_sku(sku), "31337"))
        line = load_line(path)
        assert line.config.sku.name == sku
        assert len(line.config.slots) == 4


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('sku = "BRN404"', 'sku = "BRN999"', "line.toml:4: line.sku:"),
        (
            'pattern = "BAT-[0-9]{6}"',
            'pattern = "BAT-[0-9"',
            "line.toml:17: parts[0].pattern: not a regular",
        ),
        (
            "retest_limit = 1",
            "retest_limit = -1",
            "line.toml:6: line.retest_limit: must be between",
        ),
        ("retest_limit = 1", 'retest_limit = "two"', "line.toml:6: line.retest_limit: must be int"),
        (
            'backend = "fake"\n\n[slots.B]',
            "backend = 3\n\n[slots.B]",
            "line.toml:33: slots.A.backend: must be str",
        ),
        ("unique = true", "uniq = true", "line.toml:22: parts[1].uniq: unknown key"),
        (
            '[site]\ncountry = "US"',
            '[site]\ncountry = "US"\nplanet = "earth"',
            "line.toml:10: site.planet: unknown key",
        ),
    ],
)
def test_each_problem_names_line_and_key(old: str, new: str, expected: str) -> None:
    assert old in CONFIG
    problems = _problems(CONFIG.replace(old, new, 1))
    assert any(p.startswith(expected) for p in problems), problems


def test_toml_syntax_error_names_the_line() -> None:
    problems = _problems(CONFIG.replace('name = "battery"', 'name = "battery'))
    assert problems[0].startswith("line.toml: not valid TOML:") and "line 16" in problems[0]


def test_test_plan_problem_gets_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "trayline.toml"
    path.write_text(CONFIG.replace("low = 3.6", "lo = 3.6"))
    with pytest.raises(ConfigError) as caught:
        load_line(path)
    assert caught.value.problems[0].startswith(f"{path}:30: test_plan.steps[0].measurements[0]")


def test_cat_m1_at_a_cm_in_china_skips_connectivity() -> None:
    config = parse_line_config(CONFIG.replace('country = "US"', 'country = "CN"'))
    assert config.connectivity_skipped
    assert "cannot connect to cellular" in config.warnings[0]
    assert not parse_line_config(CONFIG).connectivity_skipped


def test_group_pattern_and_path_keys() -> None:
    from datetime import UTC, datetime

    assert (
        format_group("{date:%Y%m%d}_{count:04d}", when=datetime(2026, 11, 25, tzinfo=UTC), count=7)
        == "20261125_0007"
    )
    assert path_key("test_plan.steps[2].measurements[0].low") == (
        "test_plan",
        "steps",
        2,
        "measurements",
        0,
        "low",
    )
    problems = _problems(CONFIG + '\n[provisioning]\ngroup = "{when}"\n')
    assert any("provisioning.group" in p for p in problems)

"""trayline.settings: the one reader of the environment, its table and its precedence."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from trayline import settings
from trayline.core.ratelimits import InvalidRateLimit, RateLimit
from trayline.firmware.bundle import bundle_dir
from trayline.particle.auth import token_from_env
from trayline.particle.client import DEFAULT_API_URL, api_url_from_env
from trayline.particle.ratelimit import DEFAULT_RATE_LIMIT, rate_limit_from_env
from trayline.store.db import DEFAULT_URL, database_url

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "trayline"


def test_blank_means_unset() -> None:
    env = {"TRAYLINE_DATABASE_URL": "  ", "PARTICLE_API_URL": "", "TRAYLINE_RATE_LIMIT": " "}
    assert settings.database_url(env) is None
    assert settings.api_url(env) is None
    assert settings.rate_limit(env) is None
    assert settings.bundle_dir({}) is None
    assert settings.access_token({"PARTICLE_ACCESS_TOKEN": "\t"}) is None


def test_typed_values() -> None:
    env = {
        "TRAYLINE_DATABASE_URL": " sqlite:///x.db ",
        "PARTICLE_API_URL": "http://127.0.0.1:8787/",
        "TRAYLINE_RATE_LIMIT": "600/5m",
        "TRAYLINE_BUNDLE_DIR": "/srv/bundles",
        "TRAYLINE_OPENOCD": "/opt/openocd/bin/openocd",
        "TRAYLINE_LINE": "lines/a.toml",
        "TRAYLINE_VIRTUAL_TIME_SCALE": "0.01",
    }
    assert settings.database_url(env) == "sqlite:///x.db"
    assert settings.api_url(env) == "http://127.0.0.1:8787"
    assert settings.rate_limit(env) == RateLimit(600, 300)
    assert settings.bundle_dir(env) == Path("/srv/bundles")
    assert settings.tool_path("TRAYLINE_OPENOCD", env) == "/opt/openocd/bin/openocd"
    assert settings.line_file(env) == Path("lines/a.toml")
    assert settings.virtual_time_scale(env) == 0.01
    with pytest.raises(ValueError, match="not a TRAYLINE_<TOOL>"):
        settings.tool_path("PATH", env)


@pytest.mark.parametrize("text", ["fast", "-1", "nan", "inf"])
def test_a_bad_time_scale_names_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match=r"^TRAYLINE_VIRTUAL_TIME_SCALE="):
        settings.virtual_time_scale({"TRAYLINE_VIRTUAL_TIME_SCALE": text})


def test_a_bad_rate_limit_names_the_variable() -> None:
    with pytest.raises(InvalidRateLimit, match=r"^TRAYLINE_RATE_LIMIT: 'lots' is not a rate"):
        settings.rate_limit({"TRAYLINE_RATE_LIMIT": "lots"})


def test_option_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The precedence docs/configuration.md states, through the callers that own each default."""
    for var in ("TRAYLINE_DATABASE_URL", "PARTICLE_API_URL", "TRAYLINE_RATE_LIMIT"):
        monkeypatch.delenv(var, raising=False)
    assert database_url() == DEFAULT_URL
    assert api_url_from_env() == DEFAULT_API_URL
    assert rate_limit_from_env() == DEFAULT_RATE_LIMIT
    monkeypatch.setenv("TRAYLINE_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("PARTICLE_API_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("TRAYLINE_RATE_LIMIT", "20/10")
    assert database_url() == "sqlite:///env.db"
    assert api_url_from_env() == "http://127.0.0.1:9"
    assert rate_limit_from_env() == RateLimit(20, 10)
    assert database_url("sqlite:///opt.db") == "sqlite:///opt.db"
    assert api_url_from_env("http://127.0.0.1:7") == "http://127.0.0.1:7"
    assert rate_limit_from_env("5/1") == RateLimit(5, 1)


def test_bundle_dir_and_token_go_through_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TRAYLINE_BUNDLE_DIR", raising=False)
    assert bundle_dir(f"sqlite:///{tmp_path}/t.db") == tmp_path / "trayline-bundles"
    monkeypatch.setenv("TRAYLINE_BUNDLE_DIR", str(tmp_path / "b"))
    assert bundle_dir(f"sqlite:///{tmp_path}/t.db") == tmp_path / "b"
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", " abc123 ")
    token = token_from_env()
    assert token is not None and token.reveal() == "abc123"
    assert token_from_env({"PARTICLE_ACCESS_TOKEN": ""}) is None


def _environ_reads(path: Path) -> list[int]:
    """Lines of ``path`` that read the process environment directly."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"environ", "getenv", "environb"}
    lines = []
    for node in ast.walk(tree):
        reads_os = (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )
        imports_it = (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in names for a in node.names)
        )
        if reads_os or imports_it:
            lines.append(node.lineno)  # type: ignore[attr-defined]
    return lines


def test_nothing_but_settings_reads_the_environment() -> None:
    """ARCHITECTURE.md: one module reads every variable; nothing else touches os.environ."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if "settings" not in path.relative_to(SRC).parts[:1]
        for line in _environ_reads(path)
    ]
    assert not offenders, "read the environment through trayline.settings: " + ", ".join(offenders)


def test_every_variable_is_in_the_docs_table() -> None:
    """docs/configuration.md and the README list every variable settings reads."""
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for var in settings.ENV_VARS:
        row = re.compile(rf"^\|\s*`{re.escape(var.name)}`\s*\|", re.MULTILINE)
        assert row.search(docs), f"{var.name} missing from docs/configuration.md's table"
        assert row.search(readme), f"{var.name} missing from README.md's configuration table"

"""Every environment variable trayline reads, in one place, typed and documented.

ARCHITECTURE.md: "One module, ``trayline.settings``, reads them all; nothing
else touches ``os.environ``." Keeping every read here means one table
(:data:`ENV_VARS`, rendered in docs/configuration.md and the README) can be
complete by construction, and a test (tests/architecture) can refuse an
``os.environ`` anywhere else under ``src/``.

Precedence, the same for every setting: a command-line option wins over the
environment variable, which wins over ``trayline.toml`` (when the setting has a
key there; :mod:`trayline.settings.line`), which wins over the built-in default.
The accessors here return ``None`` when the variable is unset or blank, so the
caller that owns the default (and the option) applies the order above.

Every accessor takes an optional ``environ`` mapping so tests need not
mutate the process environment. Values that need parsing are parsed here and
refused with the variable's name in the message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trayline.core.ratelimits import InvalidRateLimit, RateLimit

__all__ = [
    "ACCESS_TOKEN",
    "API_URL",
    "BUNDLE_DIR",
    "CLOUD_ADMIN_TOKEN",
    "DATABASE_URL",
    "ENV_VARS",
    "LINE_FILE",
    "OUTBOX_SECRET",
    "OUTBOX_URL",
    "RATE_LIMIT",
    "TOOL_PATHS",
    "VIRTUAL_TIME_SCALE",
    "WEB_SECRET",
    "EnvVar",
    "access_token",
    "api_url",
    "bundle_dir",
    "cloud_admin_token",
    "database_url",
    "environment",
    "line_file",
    "outbox_secret",
    "outbox_url",
    "rate_limit",
    "tool_path",
    "virtual_time_scale",
    "web_secret",
]


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One row of the configuration table."""

    name: str
    meaning: str
    default: str
    overridden_by: str
    """What wins over the variable (a command-line option), or "-"."""


DATABASE_URL = EnvVar(
    "TRAYLINE_DATABASE_URL",
    "The store: a SQLAlchemy URL, `sqlite:///PATH` or `postgresql+psycopg://...`",
    "`sqlite:///trayline.db` (in the working directory)",
    "`--db`",
)
ACCESS_TOKEN = EnvVar(
    "PARTICLE_ACCESS_TOKEN",
    "Particle Cloud access token (never put it in argv, a URL or a file others can read)",
    "none: `--token-file` (mode 0600) or a prompt",
    "`--token-file`",
)
API_URL = EnvVar(
    "PARTICLE_API_URL",
    "The cloud to talk to: the local cloud (`trayline cloud serve` prints its URL) for rehearsals",
    "`https://api.particle.io`",
    "-",
)
RATE_LIMIT = EnvVar(
    "TRAYLINE_RATE_LIMIT",
    "Requests the cloud allows, `REQUESTS/SECONDS` (units s, m, h: `10000/300`, `600/5m`)",
    "`10000/300` (Particle's documented limit)",
    "`--rate-limit`",
)
BUNDLE_DIR = EnvVar(
    "TRAYLINE_BUNDLE_DIR",
    "Where firmware bundle files are kept, by SHA-256",
    "`trayline-bundles/` next to a SQLite store, else in the working directory",
    "-",
)
TOOL_PATHS = EnvVar(
    "TRAYLINE_<TOOL>",
    "Explicit path of an external programmer tool (e.g. `TRAYLINE_OPENOCD`); see docs/devices.md",
    "the tool's name looked up on `PATH`",
    "-",
)

CLOUD_ADMIN_TOKEN = EnvVar(
    "TRAYLINE_CLOUD_ADMIN_TOKEN",
    "Guards the local cloud's admin surface (`/_emulator`); required to listen off loopback",
    "none: `/_emulator` open on loopback only",
    "`--admin-token-file` (not both)",
)
LINE_FILE = EnvVar(
    "TRAYLINE_LINE",
    "The line's configuration file (`trayline.toml`: product, SKU, bundles, test plan, slots)",
    "`trayline.toml` in the working directory",
    "`--config` / `-c`",
)
VIRTUAL_TIME_SCALE = EnvVar(
    "TRAYLINE_VIRTUAL_TIME_SCALE",
    "How fast simulated devices run: real seconds per simulated second (`0` = no waiting)",
    "`1` (real time)",
    "-",
)
WEB_SECRET = EnvVar(
    "TRAYLINE_WEB_SECRET",
    "Key that signs `trayline serve` session cookies (a secret: same value on every web worker)",
    "`.trayline-web-secret` (0600) in the workspace, created on first start",
    "-",
)

OUTBOX_URL = EnvVar(
    "TRAYLINE_OUTBOX_URL",
    "The customer's webhook that `trayline outbox send` POSTs each completed unit to",
    "none: the outbox queues and sends nothing",
    "`--url`",
)
OUTBOX_SECRET = EnvVar(
    "TRAYLINE_OUTBOX_SECRET",
    "HMAC-SHA256 key signing each outbox POST (a secret shared with the customer's receiver)",
    "none: `--secret-file` (mode 0600)",
    "`--secret-file`",
)

ENV_VARS: tuple[EnvVar, ...] = (
    DATABASE_URL,
    ACCESS_TOKEN,
    API_URL,
    RATE_LIMIT,
    BUNDLE_DIR,
    CLOUD_ADMIN_TOKEN,
    LINE_FILE,
    TOOL_PATHS,
    VIRTUAL_TIME_SCALE,
    WEB_SECRET,
    OUTBOX_URL,
    OUTBOX_SECRET,
)
"""Every variable trayline itself reads (tests read their own; docs/configuration.md)."""

_TOOL_VAR = re.compile(r"TRAYLINE_[A-Z][A-Z0-9_]*")


def environment() -> Mapping[str, str]:
    """The process environment, read-only: for handing to a child process or a seam.

    Code that needs a *setting* uses an accessor below; this is for code that
    passes the environment on (a subprocess) or takes it as an injectable
    mapping, so that it still goes through the one module that reads it.
    """
    return os.environ


def _value(var: EnvVar | str, environ: Mapping[str, str] | None) -> str | None:
    name = var if isinstance(var, str) else var.name
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``TRAYLINE_DATABASE_URL``, or ``None`` (the store's default applies)."""
    return _value(DATABASE_URL, environ)


def access_token(environ: Mapping[str, str] | None = None) -> str | None:
    """``PARTICLE_ACCESS_TOKEN`` as text; wrap it in ``AccessToken`` at once and never log it."""
    return _value(ACCESS_TOKEN, environ)


def api_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``PARTICLE_API_URL`` without a trailing slash, or ``None`` (the real API)."""
    value = _value(API_URL, environ)
    return value.rstrip("/") if value else None


def rate_limit(environ: Mapping[str, str] | None = None) -> RateLimit | None:
    """``TRAYLINE_RATE_LIMIT`` parsed, or ``None``; a bad value names the variable."""
    value = _value(RATE_LIMIT, environ)
    if value is None:
        return None
    try:
        return RateLimit.parse(value)
    except InvalidRateLimit as exc:
        raise InvalidRateLimit(f"{RATE_LIMIT.name}: {exc}") from None


def bundle_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``TRAYLINE_BUNDLE_DIR`` as a path, or ``None`` (next to the store)."""
    value = _value(BUNDLE_DIR, environ)
    return Path(value) if value else None


def cloud_admin_token(environ: Mapping[str, str] | None = None) -> str | None:
    """``TRAYLINE_CLOUD_ADMIN_TOKEN`` (a secret: never log it), or ``None``."""
    return _value(CLOUD_ADMIN_TOKEN, environ)


def line_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """``TRAYLINE_LINE``: the line's ``trayline.toml``, or ``None`` (the working directory's)."""
    value = _value(LINE_FILE, environ)
    return Path(value) if value else None


def virtual_time_scale(environ: Mapping[str, str] | None = None) -> float | None:
    """``TRAYLINE_VIRTUAL_TIME_SCALE`` as a number >= 0, or ``None``; a bad value names it."""
    value = _value(VIRTUAL_TIME_SCALE, environ)
    if value is None:
        return None
    try:
        scale = float(value)
    except ValueError:
        scale = -1.0
    if not scale >= 0 or scale == float("inf"):
        raise ValueError(
            f"{VIRTUAL_TIME_SCALE.name}={value!r}: expected a number >= 0 (e.g. 0, 0.01, 1)"
        )
    return scale


def web_secret(environ: Mapping[str, str] | None = None) -> str | None:
    """``TRAYLINE_WEB_SECRET`` (a secret: never log it), or ``None`` (the workspace file)."""
    return _value(WEB_SECRET, environ)


def outbox_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``TRAYLINE_OUTBOX_URL``: the customer's webhook, or ``None``."""
    return _value(OUTBOX_URL, environ)


def outbox_secret(environ: Mapping[str, str] | None = None) -> str | None:
    """``TRAYLINE_OUTBOX_SECRET`` (a secret: never log it), or ``None``."""
    return _value(OUTBOX_SECRET, environ)


def tool_path(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """An external tool's explicit path from ``TRAYLINE_<TOOL>`` (e.g. ``TRAYLINE_OPENOCD``)."""
    if not _TOOL_VAR.fullmatch(variable):
        raise ValueError(f"{variable!r} is not a TRAYLINE_<TOOL> variable name")
    return _value(variable, environ)

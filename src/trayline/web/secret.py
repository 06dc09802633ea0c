"""The key that signs session cookies: ``TRAYLINE_WEB_SECRET`` or a 0600 file in the workspace.

The key never comes from the command line (argv is visible to every user of
the machine). Several ``trayline serve`` workers against one PostgreSQL line
must share one key: set ``TRAYLINE_WEB_SECRET`` on each, or point them at the
same workspace. The file is created on first start with mode 0600, and refused
when others can read it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from trayline import settings

__all__ = ["SECRET_FILE", "SecretError", "load_secret", "workspace_of"]

SECRET_FILE = ".trayline-web-secret"  # noqa: S105 - a file name
MIN_LENGTH = 32


class SecretError(Exception):
    """The key cannot be read or made; the message names the file or variable."""


def workspace_of(database_url: str) -> Path:
    """The folder of a SQLite store, else the working directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path.cwd()


def load_secret(workspace: Path) -> str:
    """The signing key: the variable if set, else the workspace file (made if missing)."""
    value = settings.web_secret()
    if value is not None:
        if len(value) < MIN_LENGTH:
            raise SecretError(
                f"{settings.WEB_SECRET.name} is {len(value)} characters; use at least "
                f"{MIN_LENGTH} random ones"
            )
        return value
    path = workspace / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise SecretError(f"{path}: cannot create the session key: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return _read(path)


def _read(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(f"{path}: others can read the session key: chmod 600 {path}")
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"{path}: cannot read the session key: {exc.strerror}") from None
    if len(value) < MIN_LENGTH:
        raise SecretError(
            f"{path}: the session key is too short; delete the file to make a new one"
        )
    return value

"""The access token: where it may come from and how it is kept out of sight.

A token opens a whole product. trayline reads it only from the environment
(``PARTICLE_ACCESS_TOKEN``), from a token file that only its owner can read
(mode 0600), or from an interactive prompt — never from a command-line argument,
which shows in ``ps`` and shell history. Inside the process it is an
:class:`AccessToken`, whose ``str``/``repr`` are masked, so an accidental log
line or f-string shows ``<token …a1b2>`` instead of the secret; only
:meth:`AccessToken.reveal` gives the value, and only the client's header
builder calls it.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Mapping
from pathlib import Path

from trayline import settings

__all__ = ["AccessToken", "TokenError", "token_from_env", "token_from_file"]

ENV_VAR = "PARTICLE_ACCESS_TOKEN"


class TokenError(Exception):
    """No usable token, or a token file that is not private. The message never holds the token."""


class AccessToken:
    """A Particle access token that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value or any(c.isspace() for c in value) or not value.isprintable():
            raise TokenError("the access token is empty or contains spaces or control characters")
        if not all("!" <= c <= "~" for c in value):
            # Particle tokens are ASCII letters and digits; anything else cannot go in an
            # HTTP header and would fail deep inside the HTTP library instead of here.
            raise TokenError(
                "the access token contains non-ASCII characters; a Particle token is letters "
                "and digits only: copy it again from the console or `particle token create`"
            )
        self._value = value

    def reveal(self) -> str:
        """The secret itself: for the ``Authorization`` header and nothing else."""
        return self._value

    @property
    def fingerprint(self) -> str:
        """A short one-way digest naming the account in budgets and logs."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<token {self.fingerprint[:6]}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccessToken) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an AccessToken is not serialisable")


def token_from_env(environ: Mapping[str, str] | None = None) -> AccessToken | None:
    """``PARTICLE_ACCESS_TOKEN`` (read by :mod:`trayline.settings`), or ``None`` if unset."""
    value = settings.access_token(environ)
    return AccessToken(value) if value else None


def token_from_file(path: Path) -> AccessToken:
    """Read a token file, refusing one that group or others can read or write."""
    try:
        info = path.stat()
    except OSError as exc:
        raise TokenError(f"{path}: cannot read token file ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise TokenError(f"{path}: not a regular file")
    if info.st_mode & 0o077:
        raise TokenError(
            f"{path}: token file is readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise TokenError(f"{path}: cannot read token file as text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise TokenError(f"{path}: expected exactly one line holding the token")
    return AccessToken(lines[0])

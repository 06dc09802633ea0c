"""Getting the access token for a command, from the only places trayline accepts it.

In order: ``--token-file FILE`` (refused unless mode 0600), the
``PARTICLE_ACCESS_TOKEN`` environment variable, then an interactive prompt that
does not echo (only when stdin is a terminal). There is deliberately no
``--token`` option: argv is visible to every user of the machine.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer

from trayline.cli.console import fail
from trayline.particle.auth import AccessToken, TokenError, token_from_env, token_from_file

TokenFileOption = typer.Option(
    None,
    "--token-file",
    help="File holding the access token (must be mode 0600). Default: $PARTICLE_ACCESS_TOKEN.",
    dir_okay=False,
)


def resolve_token(token_file: Path | None) -> AccessToken:
    try:
        if token_file is not None:
            return token_from_file(token_file)
        token = token_from_env()
        if token is not None:
            return token
        if sys.stdin.isatty():
            return AccessToken(getpass.getpass("Particle access token: "))
    except TokenError as exc:
        fail(str(exc))
    fail(
        "no access token: set PARTICLE_ACCESS_TOKEN, or pass --token-file FILE (mode 0600), "
        "or run in a terminal to be prompted"
    )

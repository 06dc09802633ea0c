"""``trayline users``: who may use ``trayline serve`` — people with roles, and API tokens.

Roles rank operator < engineer < admin: an operator runs the station page and
reads the line; an engineer also downloads exports; an admin manages users,
tokens and stations. Passwords come from a prompt or standard input (never
argv) and are stored as argon2 hashes. ``users token`` prints a new API token
once; only its SHA-256 is stored.

Exit codes: 0 ok; 1 no such user; 2 bad input (role, name, short password,
name taken); 4 store problem.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

import typer
from rich.table import Table

from trayline.cli.console import fail, out
from trayline.cli.options import DbOption, open_db
from trayline.store.db import Store
from trayline.store.users import (
    ROLES,
    UserExists,
    add_token,
    add_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
)
from trayline.web.access import hash_password, new_token, token_digest

app = typer.Typer(
    help="Users of the web UI (trayline serve): roles, passwords, API tokens.\n\n"
    "5 failed sign-ins for a name (or 20 from one address) in 5 minutes hold it back until "
    "the oldest is 5 minutes old (HTTP 429).\n\n"
    "Example: trayline users add alice --role admin",
    no_args_is_help=True,
)
MIN_PASSWORD = 8
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
PasswordStdin = typer.Option(
    False, "--password-stdin", help="Read the password from the first line of standard input."
)


def _password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        fail(f"the password needs at least {MIN_PASSWORD} characters; nothing changed")
    return password


def _role(role: str) -> str:
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


@app.command("add")
def add_command(
    name: str = typer.Argument(..., help="Login name (letters, digits, _ . @ -)."),
    role: str = typer.Option(..., "--role", help=f"One of {', '.join(ROLES)}."),
    password_stdin: bool = PasswordStdin,
    db: str | None = DbOption,
) -> None:
    """Add a user; the password is asked for (twice) or read from stdin.

    Example: trayline users add alice --role admin
    Example: printf '%s\\n' "$PW" | trayline users add scanner1 --role operator --password-stdin
    """
    if not _NAME.fullmatch(name):
        fail(f"{name!r} is not a user name: letters, digits, _ . @ -, at most 64")
    _role(role)
    password = _password(password_stdin)
    with open_db(db) as store:
        try:
            add_user(store, name, role, hash_password(password))
        except UserExists as exc:
            fail(f"{exc}; change it with trayline users role/passwd")
    out.print(f"user {name} added as {role}")


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
    db: str | None = DbOption,
) -> None:
    """List users, their roles and how many API tokens each has.

    Example: trayline users list --json
    """
    with open_db(db) as store:
        users = list_users(store)
    if as_json:
        rows = [
            {"name": u.name, "role": u.role, "disabled": u.disabled, "tokens": u.tokens}
            for u in users
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "role", "state", "API tokens", box=None)
    for u in users:
        table.add_row(u.name, u.role, "disabled" if u.disabled else "enabled", str(u.tokens))
    out.print(table)


def _change(db: str | None, what: str, action: Callable[[Store], object]) -> None:
    with open_db(db) as store:
        try:
            action(store)
        except LookupError as exc:
            fail(str(exc).strip("'\""), 1)
    if what:
        out.print(what)


@app.command("passwd")
def passwd_command(
    name: str = typer.Argument(...), password_stdin: bool = PasswordStdin, db: str | None = DbOption
) -> None:
    """Set a user's password.

    Example: trayline users passwd alice
    """
    hashed = hash_password(_password(password_stdin))
    _change(db, f"password of {name} changed", lambda s: set_password(s, name, hashed))


@app.command("role")
def role_command(
    name: str = typer.Argument(...), role: str = typer.Argument(...), db: str | None = DbOption
) -> None:
    """Give a user another role.

    Example: trayline users role bob engineer
    """
    _role(role)
    _change(db, f"{name} is now {role}", lambda s: set_role(s, name, role))


@app.command("disable")
def disable_command(name: str = typer.Argument(...), db: str | None = DbOption) -> None:
    """Disable a user and all their API tokens (their next request is refused).

    Example: trayline users disable bob
    """
    _change(db, f"{name} disabled", lambda s: set_disabled(s, name, True))


@app.command("enable")
def enable_command(name: str = typer.Argument(...), db: str | None = DbOption) -> None:
    """Enable a disabled user again.

    Example: trayline users enable bob
    """
    _change(db, f"{name} enabled", lambda s: set_disabled(s, name, False))


@app.command("token")
def token_command(
    name: str = typer.Argument(..., help="The user the token acts as."),
    label: str = typer.Option("", "--label", help="What will use it (shown in users list)."),
    db: str | None = DbOption,
) -> None:
    """Make an API token for a user and print it once (only its digest is stored).

    Example: trayline users token mes-bridge --label "customer MES" > mes.token
    """
    token = new_token()
    _change(db, "", lambda s: add_token(s, name, token_digest(token), label))
    print(token)

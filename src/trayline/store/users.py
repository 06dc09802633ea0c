"""The web users repository: users with roles, their password hashes and API tokens.

Hashing is the caller's business (``trayline.web.access`` hashes with argon2);
this module stores and finds what it is given, so the store imports no
crypto library. Tokens are looked up by the SHA-256 of the presented token,
which is unique in the table: one indexed read per API call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from trayline.store.db import Store
from trayline.store.models.base import utcnow
from trayline.store.models.web import ApiToken, WebUser

__all__ = [
    "ROLES",
    "Credentials",
    "UserExists",
    "UserView",
    "add_token",
    "add_user",
    "count_users",
    "find_user",
    "list_users",
    "set_disabled",
    "set_password",
    "set_role",
    "user_for_token",
]

ROLES = ("operator", "engineer", "admin")
"""Least to most: each role may do everything the roles before it may."""


class UserExists(Exception):
    """A user by that name is already there (the unique constraint said so)."""


@dataclass(frozen=True, slots=True)
class UserView:
    """A user without the password hash: what pages and the CLI may show."""

    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user with the stored hash, for the one place that verifies passwords."""

    user: UserView
    password_hash: str


def _view(row: WebUser, tokens: int = 0) -> UserView:
    return UserView(row.id, row.name, row.role, bool(row.disabled), row.created_at, tokens)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def add_user(store: Store, name: str, role: str, password_hash: str) -> UserView:
    _check_role(role)
    try:
        with store.session() as session:
            row = WebUser(name=name, role=role, password_hash=password_hash, disabled=False)
            session.add(row)
            session.flush()
            return _view(row)
    except IntegrityError:
        raise UserExists(f"user {name!r} exists already") from None


def find_user(store: Store, name: str) -> Credentials | None:
    with store.session() as session:
        row = session.scalars(select(WebUser).where(WebUser.name == name)).first()
        return Credentials(_view(row), row.password_hash) if row else None


def count_users(store: Store) -> int:
    with store.session() as session:
        return int(
            session.execute(
                select(func.count(WebUser.id)).where(WebUser.disabled.is_(False))
            ).scalar_one()
        )


def list_users(store: Store) -> list[UserView]:
    tokens = select(func.count(ApiToken.id)).where(ApiToken.user_id == WebUser.id).scalar_subquery()
    with store.session() as session:
        rows = session.execute(select(WebUser, tokens).order_by(WebUser.name)).all()
        return [_view(row, int(n or 0)) for row, n in rows]


def _set(store: Store, name: str, **values: object) -> UserView:
    with store.session() as session:
        row = session.scalars(select(WebUser).where(WebUser.name == name)).first()
        if row is None:
            raise LookupError(f"no user {name!r}")
        for key, value in values.items():
            setattr(row, key, value)
        session.flush()
        return _view(row)


def set_password(store: Store, name: str, password_hash: str) -> UserView:
    return _set(store, name, password_hash=password_hash)


def set_role(store: Store, name: str, role: str) -> UserView:
    _check_role(role)
    return _set(store, name, role=role)


def set_disabled(store: Store, name: str, disabled: bool) -> UserView:
    return _set(store, name, disabled=disabled)


def add_token(store: Store, name: str, token_sha256: str, label: str = "") -> UserView:
    """Store a token's digest for user ``name`` (the token itself is never stored)."""
    with store.session() as session:
        row = session.scalars(select(WebUser).where(WebUser.name == name)).first()
        if row is None:
            raise LookupError(f"no user {name!r}")
        session.add(ApiToken(user_id=row.id, token_sha256=token_sha256, label=label[:64]))
        return _view(row)


def user_for_token(store: Store, token_sha256: str) -> UserView | None:
    """The enabled user a token digest belongs to (and note when it was used), or None.

    It writes first: on SQLite a transaction that reads and then writes cannot
    wait for another connection's write (its snapshot is stale by then, and it
    fails at once with "database is locked"); one that writes first waits on
    ``busy_timeout`` like any writer — a station's slot threads or another
    ``trayline`` process writing the same file.
    """
    enabled = select(WebUser.id).where(WebUser.disabled.is_(False))
    with store.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_sha256 == token_sha256, ApiToken.user_id.in_(enabled))
            .values(last_used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        user = session.scalars(
            select(WebUser)
            .join(ApiToken, ApiToken.user_id == WebUser.id)
            .where(ApiToken.token_sha256 == token_sha256, WebUser.disabled.is_(False))
        ).first()
        return None if user is None else _view(user)

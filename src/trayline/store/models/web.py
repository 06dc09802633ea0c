"""People and machines allowed into ``trayline serve``: users, their roles, API tokens.

A *user* has a name, a role (``operator`` < ``engineer`` < ``admin``) and an
argon2 hash of the password — never the password. An *API token* lets a
machine (a label printer, the customer's MES) call ``/api/``: only the SHA-256
of the token is stored, so a copy of the database does not hand out access;
the token itself is printed once, when it is made. A token acts with the role
of the user it belongs to, and disabling that user disables its tokens.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trayline.store.models.base import Base, UtcDateTime, utcnow


class WebUser(Base):
    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "web_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

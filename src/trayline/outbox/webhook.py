"""The customer's webhook: where completed units go, how each request is signed.

Configuration: the URL from ``--url`` or ``TRAYLINE_OUTBOX_URL``; the HMAC
secret from ``TRAYLINE_OUTBOX_SECRET`` or a file (``--secret-file``, mode 0600
— refused otherwise), never the command line. Each POST carries:

* ``Content-Type: application/json`` and the message as canonical JSON;
* ``Idempotency-Key``: the row's key, the same on every re-send of that row;
* ``X-Trayline-Timestamp``: Unix seconds when this request was signed;
* ``X-Trayline-Signature: sha256=<hex>``: HMAC-SHA256 with the shared secret
  over ``<timestamp>.<body>``, so a receiver can reject forged and (by the
  timestamp) long-replayed requests.

Receivers verify with :func:`signature_ok` (the tests' receiver does).
"""

from __future__ import annotations

import hashlib
import hmac
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookConfig",
    "WebhookConfigError",
    "read_secret_file",
    "sign",
    "signature_ok",
    "webhook_config",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Trayline-Signature"
TIMESTAMP_HEADER = "X-Trayline-Timestamp"


class WebhookConfigError(Exception):
    """The URL or secret is missing or unusable (exit code 2, nothing sent)."""


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    secret: bytes = field(repr=False)


def read_secret_file(path: Path) -> bytes:
    """The secret in ``path`` (surrounding whitespace dropped); refused unless mode 0600-ish."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes().strip()
    except OSError as exc:
        raise WebhookConfigError(
            f"{path}: cannot read the webhook secret ({exc.strerror})"
        ) from None
    if mode & 0o077:
        raise WebhookConfigError(
            f"{path}: webhook secret file has mode {mode:04o}, readable by others; chmod 600 it"
        )
    if not data:
        raise WebhookConfigError(f"{path}: the webhook secret file is empty")
    return data


def webhook_config(
    url: str | None, secret_env: str | None, secret_file: Path | None
) -> WebhookConfig:
    if not url:
        raise WebhookConfigError(
            "no webhook URL: pass --url or set TRAYLINE_OUTBOX_URL (the customer's endpoint)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookConfigError(f"webhook URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise WebhookConfigError("the webhook URL must not carry credentials; use the secret")
    if secret_file is not None:
        secret = read_secret_file(secret_file)
    elif secret_env:
        secret = secret_env.encode("utf-8")
    else:
        raise WebhookConfigError(
            "no webhook secret: set TRAYLINE_OUTBOX_SECRET or pass --secret-file (mode 0600)"
        )
    return WebhookConfig(url, secret)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_ok(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), header)

"""The local cloud's error answers, in the shapes of spec §0.3 (there is no single envelope).

A :class:`CloudError` carries an HTTP status and the exact JSON body to send; the
front door turns it into the response. Handlers, body parsing and the state all
raise it, so a refusal looks the same wherever it is decided. The constant bodies
below are the ones Particle's own clients recognise (``invalid_token``,
``Permission Denied`` with ``info``, ``unauthorized`` for API users).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "API_USER_FORBIDDEN",
    "ERROR_TEXT",
    "INVALID_TOKEN",
    "MISSING_TOKEN",
    "TOO_MANY",
    "CloudError",
    "bad_request",
    "conflict",
    "not_found",
    "permission_denied",
    "too_large",
]

INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is invalid.",
}
MISSING_TOKEN = {
    "error": "invalid_request",
    "error_description": "The access token was not found",
}
API_USER_FORBIDDEN = {
    "error": "unauthorized",
    "error_description": "API users are not allowed to call this endpoint",
}
TOO_MANY = {"ok": False, "error": "Too many requests"}
ERROR_TEXT = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_DENIED_INFO = (
    "I didn't recognize that device name or ID, try opening "
    "https://api.particle.io/v1/devices?access_token="
)


class CloudError(Exception):
    """A Particle-shaped error answer: an HTTP status and the exact JSON body to send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def permission_denied(status: int = 403) -> CloudError:
    """The cloud's answer for a device that does not exist or is not yours (spec §0.3)."""
    return CloudError(status, {"ok": False, "error": "Permission Denied", "info": _DENIED_INFO})


def bad_request(message: str) -> CloudError:
    return CloudError(400, {"ok": False, "error": message})


def not_found(message: str) -> CloudError:
    return CloudError(404, {"ok": False, "error": message})


def conflict(message: str) -> CloudError:
    """409: the request is well formed but clashes with what exists (admin surface only)."""
    return CloudError(409, {"ok": False, "error": message})


def too_large(limit: int) -> CloudError:
    """413 for a body over ``max_body_bytes`` (the real cloud's limit is undocumented)."""
    return CloudError(
        413, {"ok": False, "error": f"Request body too large: the limit is {limit} bytes"}
    )

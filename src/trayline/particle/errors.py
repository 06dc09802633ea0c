"""What can go wrong talking to the Particle Cloud, one exception class per kind of failure.

The cloud has no single error envelope (spec §0.3): a message may be in
``error_description``, ``error``, ``errors[]``, ``info`` or ``shortErrorDescription``.
:func:`error_message` reads them in the order particle-cli does, and
:func:`error_for_status` turns a status and body into the exception a caller can
act on:

=====================  =========================================  =========
class                  when                                       retried
=====================  =========================================  =========
``AuthError``          401: token invalid or expired              never
``PermissionDenied``   403: no access, missing scope, someone     never
                       else's device
``NotFound``           404                                        never
``BadRequest``         400 (and other 4xx)                        never
``RateLimited``        429, with ``retry_after`` seconds if sent  yes
``ServerError``        5xx                                        yes
``TransportError``     connection refused/dropped, timeout        yes
``NotAnApi``           the URL answers, but not as the Particle   never
                       API (HTML, not JSON): a configuration
                       error, not something to retry
=====================  =========================================  =========

:class:`InvalidApiUrl` is raised before any request for an API URL that is not
``http(s)://host``.

Messages never contain the access token: the client never puts it anywhere but
the ``Authorization`` header, and bodies are quoted from the server only.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BadRequest",
    "CloudError",
    "InvalidApiUrl",
    "NotAnApi",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "TransportError",
    "error_for_status",
    "error_message",
]


class CloudError(Exception):
    """Any failure of a Particle Cloud request.

    ``status`` is the HTTP status (``None`` for transport failures), ``body`` the
    decoded JSON error body when there was one, ``route`` the method and path
    template (never a filled-in URL).
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        route: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.route = route

    def __str__(self) -> str:
        where = f" ({self.route})" if self.route else ""
        code = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{code}{self.message}{where}"


class AuthError(CloudError):
    """401: the access token is invalid or expired. Retrying cannot help."""


class PermissionDenied(CloudError):
    """403: the token may not do this, or the device is not accessible or is someone else's."""

    @property
    def belongs_to_someone_else(self) -> bool:
        return "belongs to someone else" in self.message.lower()

    @property
    def unknown_device(self) -> bool:
        return "didn't recognize that device" in self.message.lower()


class NotFound(CloudError):
    """404: the product, group, SIM or serial does not exist."""


class BadRequest(CloudError):
    """400 or another 4xx the caller must fix (invalid group name, duplicate group, …)."""

    @property
    def duplicate(self) -> bool:
        """The name is taken. Spec §5.2: status and text UNCONFIRMED (400, possibly 409)."""
        if self.status == 409:
            return True
        text = self.message.lower()
        return any(
            phrase in text
            for phrase in ("already exists", "duplicate", "already taken", "already been taken")
        )


class RateLimited(CloudError):
    """429: over a rate limit. ``retry_after`` is the server's ``Retry-After`` in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(CloudError):
    """5xx: the cloud failed; usually transient."""

    retryable = True


class TransportError(CloudError):
    """No HTTP answer at all: refused, reset, dropped or timed out."""

    retryable = True


class NotAnApi(CloudError):
    """The URL answers, but not with the Particle API's JSON: the API URL is wrong."""


class InvalidApiUrl(ValueError):
    """An API URL that is not ``http://`` or ``https://`` with a host."""


def error_message(body: Any, default: str) -> str:
    """The human message in an error body, looked up in particle-cli's order."""
    if not isinstance(body, dict):
        return default
    for key in ("shortErrorDescription", "error_description", "error"):
        value = body.get(key)
        if isinstance(value, str) and value:
            if key == "error" and isinstance(body.get("info"), str):
                return f"{value}: {_trim_info(body['info'])}"
            return value
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        )
    info = body.get("info")
    if isinstance(info, str) and info:
        return _trim_info(info)
    return default


def _trim_info(info: str) -> str:
    """Cut the cloud's advice URL (it embeds an ``access_token=`` placeholder) from ``info``."""
    cut = info.find(", try opening")
    return info[:cut] if cut > 0 else info


def error_for_status(
    status: int, body: Any, route: str, retry_after: float | None = None
) -> CloudError:
    """The exception for a non-2xx answer."""
    message = error_message(body, f"HTTP {status}")
    kw: dict[str, Any] = {"status": status, "body": body, "route": route}
    if status == 401:
        return AuthError(message, **kw)
    if status == 403 or (isinstance(body, dict) and body.get("error") == "unauthorized"):
        # API users calling a human-only endpoint get {"error": "unauthorized"} with a
        # status the docs give as 400 (unconfirmed): it is a permission problem either way.
        return PermissionDenied(message, **kw)
    if status == 404:
        return NotFound(message, **kw)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return BadRequest(message, **kw)

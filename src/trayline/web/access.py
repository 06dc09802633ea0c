"""Who may do what: passwords, API tokens, roles, sessions and CSRF tokens.

* **Passwords** are hashed with argon2 (argon2-cffi's defaults); only the hash
  is stored, and a login for an unknown name still spends one hash so timing
  does not tell which names exist.
* **API tokens** are 32 random bytes shown once (``tl_…``); the store keeps
  their SHA-256. A request with ``Authorization: Bearer tl_…`` acts as the
  token's user; such requests carry no cookie, so they need no CSRF token.
* **Sessions** are Starlette's signed cookies (itsdangerous): the cookie holds
  the user's name and the session's CSRF token, never a secret of the line.
  The user is read from the store on every request, so a disabled user or a
  changed role takes effect at once.
* **CSRF**: every unsafe request made with a session cookie must carry the
  session's token, as the form field ``csrf_token`` or the ``X-CSRF-Token``
  header; without it the answer is 403 and nothing is done.

Roles rank ``operator`` < ``engineer`` < ``admin``; a route names the least role
it needs (:func:`require`).

**Local mode**: ``trayline serve`` on loopback with no user yet lets the people
at this machine in as ``admin`` (a banner says so), like a laptop tool; the
first user added ends it. Listening on any other address needs users. A
request that names another host (``Host: evil.example`` — a web page using DNS
rebinding to reach the loopback port) or that came through a reverse proxy
(``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``) is not let in that way.

**Failed sign-ins** are counted per user name and per client address in this
process's memory (:class:`SignInLimit`): past the limit the login answers 429
without checking the password, until the oldest failure leaves the window.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from trayline.store.db import Store
from trayline.store.units import for_threads
from trayline.store.users import ROLES, UserView, count_users, find_user, user_for_token

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "TOKEN_PREFIX",
    "Forbidden",
    "NeedLogin",
    "Principal",
    "SignInLimit",
    "check_csrf",
    "check_password",
    "client_address",
    "csrf_token",
    "hash_password",
    "is_loopback",
    "new_token",
    "principal",
    "rank",
    "require",
    "token_digest",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
TOKEN_PREFIX = "tl_"  # noqa: S105 - a marker, not a secret
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_RECHECK_S = 5.0
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password anyone has")


class NeedLogin(Exception):
    """No valid session or token: 401 for the API, the login page for HTML."""


class Forbidden(Exception):
    """Logged in, but the role is too low or the CSRF token is missing or wrong."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    via: str
    """``session``, ``token`` or ``local`` (loopback, no users yet)."""


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.1``, ``::1``); a name is not resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(store: Store, name: str, password: str) -> UserView | None:
    """The user when ``password`` is theirs and they are enabled; None otherwise."""
    found = find_user(store, name)
    stored = found.password_hash if found else _DUMMY
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if found is None or found.user.disabled:
        return None
    return found.user


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the login form gets one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def principal(request: Request) -> Principal | None:
    """The caller: a bearer token's user, else the session's user, else None."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        if not token.startswith(TOKEN_PREFIX):
            return None
        # the lookup also writes last_used_at: on SQLite it takes turns with the slot threads
        user = user_for_token(for_threads(_store(request)), token_digest(token))
        return Principal(user.name, user.role, "token") if user else None
    name = request.session.get("user")
    if not isinstance(name, str):
        return _local(request)
    found = find_user(_store(request), name)
    if found is None or found.user.disabled:
        request.session.pop("user", None)
        return _local(request)
    return Principal(found.user.name, found.user.role, "session")


def _local(request: Request) -> Principal | None:
    """Local mode: a server started on loopback with no users lets this machine in as admin,
    until the first user exists (re-checked every few seconds)."""
    state = request.app.state
    if not getattr(state, "open_local", False) or not _from_this_machine(request):
        return None
    now = time.monotonic()
    if now - getattr(state, "users_checked", -LOCAL_RECHECK_S) >= LOCAL_RECHECK_S:
        state.users_exist = count_users(_store(request)) > 0
        state.users_checked = now
    if state.users_exist:
        return None
    return Principal("local", "admin", "local")


_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _from_this_machine(request: Request) -> bool:
    """Addressed to a loopback name and not relayed by a proxy: a browser on this machine."""
    if any(header in request.headers for header in _PROXY_HEADERS):
        return False
    return is_loopback(request.url.hostname or "")


async def check_csrf(request: Request) -> None:
    """403 unless the session's CSRF token came with this unsafe request."""
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


def require(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller, who must have at least ``role``."""
    needed = rank(role)

    async def dependency(request: Request) -> Principal:
        who = await run_in_threadpool(principal, request)  # a store read: off the event loop
        if who is None:
            raise NeedLogin()
        if who.via != "token" and request.method not in SAFE_METHODS:
            await check_csrf(request)
        if rank(who.role) < needed:
            raise Forbidden(f"{who.name} is {who.role}; this needs {role}")
        request.state.principal = who
        return who

    dependency.__name__ = f"require_{role}"
    return dependency


def client_address(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted reverse proxy relays for
    (on this machine, or named with ``trayline serve --trusted-proxy``)."""
    return request.client.host if request.client else ""


class SignInLimit:
    """Failed sign-ins per user name and per client address, held in this process's memory.

    After ``per_name`` failures for one name (any case) within ``window_s`` seconds, or
    ``per_address`` failures from one address, :meth:`wait` says how long until the oldest
    of them leaves the window; until then the login is refused without checking the
    password. A successful sign-in clears its own name's count only — never another
    name's, nor the address's. ``clock`` is injectable for tests (monotonic seconds).
    """

    MAX_KEYS = 10_000

    def __init__(
        self,
        *,
        per_name: int = 5,
        per_address: int = 20,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"name": per_name, "address": per_address}
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("name", name.casefold()), ("address", address)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def wait(self, name: str, address: str) -> int:
        """Whole seconds until ``name`` may try again from ``address``; 0: now."""
        now = self._clock()
        longest = 0.0
        with self._lock:
            for key in self._keys(name, address):
                times, limit = self._recent(key, now), self.limits[key[0]]
                if len(times) >= limit:
                    longest = max(longest, times[-limit] + self.window_s - now)
        return math.ceil(longest)

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(name, address):
                times = self._failures.setdefault(key, deque(maxlen=self.limits[key[0]]))
                times.append(now)
            if len(self._failures) > self.MAX_KEYS:
                self._forget(now)

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(name, address)[0], None)

    def _forget(self, now: float) -> None:
        """Bound the memory: drop expired counts, then the stalest, down to 90 % of the cap."""
        for key in list(self._failures):
            self._recent(key, now)
        extra = len(self._failures) - self.MAX_KEYS * 9 // 10
        if extra > 0:
            stalest = sorted(self._failures, key=lambda k: self._failures[k][-1])[:extra]
            for key in stalest:
                del self._failures[key]

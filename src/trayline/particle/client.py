"""An async Particle Cloud client: one typed method per endpoint a manufacturing line uses.

The client is a thin, honest facade over one :class:`httpx.AsyncClient`:

* the token goes only in the ``Authorization`` header — never a URL, a body,
  a log line or an exception;
* every request (and every retry) first takes a slot from the shared
  :class:`~trayline.particle.ratelimit.RateLimiter`, so a job runs at the rate
  the cloud allows rather than the rate round trips allow;
* 429, 5xx and transport failures are retried with jittered exponential
  backoff, honouring ``Retry-After``; 4xx answers (401 and 403 above all) are
  raised at once as the exception classes in :mod:`trayline.particle.errors`;
* each attempt is reported to :class:`CallObserver` s as a :class:`CallRecord`
  (method, *path template*, status, duration), which the store turns into the
  audit log without the client knowing about SQL.

Tests hand in ``transport=httpx.ASGITransport(emulator_app)`` to talk to the
local cloud in-process.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from trayline import __version__, settings
from trayline.core.ids import SerialNumber
from trayline.particle.auth import AccessToken
from trayline.particle.errors import (
    CloudError,
    RateLimited,
    TransportError,
    error_for_status,
)
from trayline.particle.ratelimit import (
    DEFAULT_RATE_LIMIT,
    MemorySerialBudget,
    RateLimiter,
    SerialBudget,
    next_serial_slot,
)
from trayline.particle.resources import (
    Device,
    DevicePage,
    DeviceUpdate,
    Group,
    ImportResult,
    SerialLookupResult,
    Sim,
    SimPage,
)

__all__ = [
    "DEFAULT_API_URL",
    "CallObserver",
    "CallRecord",
    "ParticleClient",
    "RetryPolicy",
    "SerialBudgetExhausted",
    "api_url_from_env",
]

DEFAULT_API_URL = "https://api.particle.io"
log = logging.getLogger(__name__)


def api_url_from_env(explicit: str | None = None) -> str:
    """``PARTICLE_API_URL`` or the real API."""
    return (explicit or settings.api_url() or DEFAULT_API_URL).rstrip("/")


class SerialBudgetExhausted(CloudError):
    """The 50-per-hour serial lookup budget is used up; ``next_at`` is when a slot frees."""

    def __init__(self, next_at: datetime) -> None:
        super().__init__(
            f"serial-number lookup budget used up (50 per hour per account); next lookup "
            f"possible at {next_at:%H:%M:%S} UTC. Import by serial number instead: import "
            f"accepts serials and needs no lookup"
        )
        self.next_at = next_at


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One attempt at one request, as the audit log keeps it (no URL, body or header)."""

    method: str
    path_template: str
    status: int | None
    duration_ms: float
    attempt: int
    error_kind: str | None


class CallObserver(Protocol):
    def record_call(self, call: CallRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures.

    Server errors and dropped connections are retried quickly (``base`` doubling
    to ``cap``); a 429 without ``Retry-After`` waits longer (``rate_limited_base``
    doubling to ``rate_limited_cap``), because "making another request
    immediately will not help" (spec §9). Delays use full jitter so that many
    concurrent senders do not retry in lock step.
    """

    max_attempts: int = 8
    base: float = 0.25
    cap: float = 30.0
    rate_limited_base: float = 5.0
    rate_limited_cap: float = 300.0

    def delay(self, attempt: int, error: CloudError, rng: random.Random) -> float:
        if isinstance(error, RateLimited):
            if error.retry_after is not None:
                return error.retry_after + rng.uniform(0, 0.25)
            ceiling = min(self.rate_limited_cap, self.rate_limited_base * 2 ** (attempt - 1))
        else:
            ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {"error": response.text[:200]}


class ParticleClient:
    """The Particle Cloud, one async method per endpoint.

    Use as an async context manager::

        async with ParticleClient(token, base_url=api_url_from_env()) as cloud:
            result = await cloud.import_devices("my-product", ["e00fce68…", "P028AB…"])
    """

    def __init__(
        self,
        token: AccessToken,
        *,
        base_url: str | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        observers: Iterable[CallObserver] = (),
        serial_budget: SerialBudget | None = None,
        timeout: float = 30.0,
        max_connections: int = 64,
        rng: random.Random | None = None,
    ) -> None:
        self._token = token
        self.base_url = api_url_from_env(base_url)
        self.limiter = limiter or RateLimiter(DEFAULT_RATE_LIMIT)
        self.retry = retry or RetryPolicy()
        self._observers = list(observers)
        self.serial_budget = serial_budget or MemorySerialBudget()
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": f"trayline/{__version__}", "Accept": "application/json"},
            follow_redirects=False,
        )
        self.requests_sent = 0
        self.status_counts: dict[str, int] = {}

    async def __aenter__(self) -> ParticleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def add_observer(self, observer: CallObserver) -> None:
        self._observers.append(observer)

    # -- the one place a request is made -------------------------------------------------

    async def _request(
        self,
        method: str,
        template: str,
        path: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str | int] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> Any:
        url = template.format(**{k: quote(str(v), safe="") for k, v in (path or {}).items()})
        route = f"{method} {template}"
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        attempt = 0
        while True:
            attempt += 1
            slot = await self.limiter.acquire()
            started = time.perf_counter()
            self.requests_sent += 1
            error: CloudError
            try:
                response = await self._http.request(
                    method, url, params=query, json=json, data=data, files=files, headers=headers
                )
            except (httpx.TransportError, OSError) as exc:
                self.limiter.settle(slot)
                error = TransportError(
                    f"no answer from {self.base_url} ({type(exc).__name__})", route=route
                )
                status: int | None = None
            else:
                self.limiter.settle(slot)
                status = response.status_code
                key = str(status)
                self.status_counts[key] = self.status_counts.get(key, 0) + 1
                if 200 <= status < 300:
                    self._record(method, template, status, started, attempt, None)
                    self.limiter.succeeded()
                    return _body(response)
                error = error_for_status(
                    status,
                    _body(response),
                    route,
                    _retry_after(response.headers.get("Retry-After")),
                )
            self._record(method, template, status, started, attempt, type(error).__name__)
            if isinstance(error, RateLimited):
                self.limiter.slow_down(error.retry_after)
            if not error.retryable or attempt >= self.retry.max_attempts:
                raise error
            delay = self.retry.delay(attempt, error, self._rng)
            log.debug("%s failed (%s); retry %d in %.2fs", route, error, attempt, delay)
            await asyncio.sleep(delay)

    def _record(
        self,
        method: str,
        template: str,
        status: int | None,
        started: float,
        attempt: int,
        error_kind: str | None,
    ) -> None:
        duration = (time.perf_counter() - started) * 1000
        log.debug("%s %s -> %s in %.1f ms", method, template, status, duration)
        record = CallRecord(method, template, status, duration, attempt, error_kind)
        for observer in self._observers:
            observer.record_call(record)

    # -- §2 serial number lookup ------------------------------------------------------

    async def lookup_serial(self, serial: str) -> SerialLookupResult:
        """Device ID and ICCID for a serial: 50 per hour per account, so use sparingly.

        The serial is validated first (``InvalidIdentifier``): a typo must not
        spend one of the 50 lookups, nor reach the budget table.
        """
        serial = SerialNumber.parse(serial)
        account = self._token.fingerprint
        next_at = next_serial_slot(self.serial_budget, account)
        if next_at is not None:
            raise SerialBudgetExhausted(next_at)
        self.serial_budget.record(account, serial, datetime.now(UTC))
        body = await self._request("GET", "/v1/serial_numbers/{serial}", {"serial": serial})
        return SerialLookupResult.from_body(serial, body)

    # -- §3 import devices into a product ----------------------------------------------

    async def import_devices(
        self,
        product: str,
        identifiers: Sequence[str],
        *,
        how: str = "file",
        import_sims: bool = True,
        claim_user: str | None = None,
    ) -> ImportResult:
        """Import device IDs, serials, IMEIs or ICCIDs into a product.

        ``how`` picks the body: ``file`` (multipart upload of one identifier per
        line — what the console and particle-cli send, any size), ``ids`` (JSON
        array) or ``id`` (exactly one identifier).
        """
        template = "/v1/products/{product}/devices"
        path = {"product": product}
        query = {"claim_user": claim_user} if claim_user else None
        if how == "file":
            content = ("\n".join(identifiers) + "\n").encode()
            body = await self._request(
                "POST",
                template,
                path,
                query=query,
                data={"import_sims": "true" if import_sims else "false"},
                files={"file": ("devices.txt", content, "text/plain")},
            )
        elif how == "ids":
            payload: dict[str, Any] = {"ids": list(identifiers), "import_sims": import_sims}
            body = await self._request("POST", template, path, query=query, json=payload)
        elif how == "id":
            if len(identifiers) != 1:
                raise ValueError("how='id' imports exactly one identifier")
            payload = {"id": identifiers[0], "import_sims": import_sims}
            body = await self._request("POST", template, path, query=query, json=payload)
        else:
            raise ValueError(f"unknown import body {how!r}: use file, ids or id")
        return ImportResult.from_body(body)

    # -- §4 SIM cards -------------------------------------------------------------------

    async def import_sims(self, product: str, iccids: Sequence[str]) -> None:
        """Import and activate SIMs (queued by the cloud; results are emailed)."""
        await self._request(
            "POST", "/v1/products/{product}/sims", {"product": product}, json={"sims": list(iccids)}
        )

    async def list_sims(
        self,
        product: str | None = None,
        *,
        iccid: str | None = None,
        device_id: str | None = None,
        page: int = 1,
        per_page: int = 100,
    ) -> SimPage:
        query: dict[str, str | int] = {"page": page, "perPage": per_page}
        if iccid:
            query["iccid"] = iccid
        if device_id:
            query["deviceId"] = device_id
        if product is None:
            body = await self._request("GET", "/v1/sims", query=query)
        else:
            body = await self._request(
                "GET", "/v1/products/{product}/sims", {"product": product}, query=query
            )
        return SimPage.from_body(body)

    async def get_sim(self, iccid: str, product: str | None = None) -> Sim:
        if product is None:
            body = await self._request("GET", "/v1/sims/{iccid}", {"iccid": iccid})
        else:
            body = await self._request(
                "GET", "/v1/products/{product}/sims/{iccid}", {"product": product, "iccid": iccid}
            )
        return Sim.from_body(body)

    # -- §5 groups -------------------------------------------------------------------------

    async def create_group(
        self,
        product: str,
        name: str,
        *,
        description: str | None = None,
        color: str | None = None,
    ) -> Group:
        payload: dict[str, str] = {"name": name}
        if description is not None:
            payload["description"] = description
        if color is not None:
            payload["color"] = color
        body = await self._request(
            "POST", "/v1/products/{product}/groups", {"product": product}, json=payload
        )
        return Group.from_body(body)

    async def list_groups(self, product: str, *, name: str | None = None) -> list[Group]:
        query = {"name": name} if name else None
        body = await self._request(
            "GET", "/v1/products/{product}/groups", {"product": product}, query=query
        )
        groups = body.get("groups") if isinstance(body, dict) else None
        return [Group.from_body(g) for g in groups] if isinstance(groups, list) else []

    async def get_group(self, product: str, name: str) -> Group:
        body = await self._request(
            "GET", "/v1/products/{product}/groups/{group}", {"product": product, "group": name}
        )
        return Group.from_body(body)

    async def update_device_groups(
        self,
        product: str,
        device_ids: Sequence[str],
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> None:
        """Batch add/remove groups on many devices in one request (``action=groups``)."""
        payload = {
            "action": "groups",
            "devices": list(device_ids),
            "metadata": {"add": list(add), "remove": list(remove)},
        }
        await self._request(
            "PUT", "/v1/products/{product}/devices", {"product": product}, json=payload
        )

    # -- §6 update / rename ------------------------------------------------------------------

    async def update_device(
        self,
        product: str,
        device_id: str,
        *,
        name: str | None = None,
        notes: str | None = None,
        development: bool | None = None,
        groups: Sequence[str] | None = None,
        desired_firmware_version: int | None = None,
        unlock_firmware: bool = False,
    ) -> DeviceUpdate:
        payload: dict[str, Any] = {}
        if name is not None:
            payload["name"] = name
        if notes is not None:
            payload["notes"] = notes
        if development is not None:
            payload["development"] = development
        if groups is not None:
            payload["groups"] = list(groups)
        if desired_firmware_version is not None or unlock_firmware:
            payload["desired_firmware_version"] = desired_firmware_version
        if not payload:
            raise ValueError("update_device needs at least one field to change")
        body = await self._request(
            "PUT",
            "/v1/products/{product}/devices/{device_id}",
            {"product": product, "device_id": device_id},
            json=payload,
        )
        return DeviceUpdate.from_body(body)

    # -- §7 claim and remove -----------------------------------------------------------------

    async def claim_device(
        self, device_id: str, *, request_transfer: bool = False
    ) -> dict[str, Any]:
        """Claim a device to the token's user. Someone else's device raises PermissionDenied."""
        payload: dict[str, Any] = {"id": device_id.lower()}
        if request_transfer:
            payload["request_transfer"] = True
        body = await self._request("POST", "/v1/devices", json=payload)
        return body if isinstance(body, dict) else {}

    async def remove_device(self, product: str, device_id: str) -> None:
        """Remove a device from a product (it goes back to a generic Particle product)."""
        await self._request(
            "DELETE",
            "/v1/products/{product}/devices/{device_id}",
            {"product": product, "device_id": device_id},
        )

    # -- §8 read product devices ---------------------------------------------------------------

    async def get_product_device(self, product: str, device_id: str) -> Device:
        body = await self._request(
            "GET",
            "/v1/products/{product}/devices/{device_id}",
            {"product": product, "device_id": device_id},
        )
        return Device.from_body(body)

    async def list_product_devices(
        self,
        product: str,
        *,
        groups: Sequence[str] = (),
        serial_number: str | None = None,
        device_id: str | None = None,
        device_name: str | None = None,
        sort_attr: str | None = None,
        sort_dir: str | None = None,
        page: int = 1,
        per_page: int = 100,
    ) -> DevicePage:
        query: dict[str, str | int] = {"page": page, "perPage": per_page}
        if groups:
            query["groups"] = ",".join(groups)
        if serial_number:
            query["serialNumber"] = serial_number
        if device_id:
            query["deviceId"] = device_id
        if device_name:
            query["deviceName"] = device_name
        if sort_attr:
            query["sortAttr"] = sort_attr
        if sort_dir:
            query["sortDir"] = sort_dir
        body = await self._request(
            "GET", "/v1/products/{product}/devices", {"product": product}, query=query
        )
        return DevicePage.from_body(body)

    async def iter_product_devices(
        self, product: str, *, groups: Sequence[str] = (), per_page: int = 100
    ) -> AsyncIterator[Device]:
        """Every device of a product (or of some groups), page by page."""
        page = 1
        while True:
            result = await self.list_product_devices(
                product, groups=groups, page=page, per_page=per_page
            )
            for device in result.devices:
                yield device
            if page >= result.total_pages or not result.devices:
                return
            page += 1

"""An async Particle Cloud client: one typed method per endpoint a manufacturing line uses.

The client is a thin, honest facade over one :class:`httpx2.AsyncClient`:

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

Tests hand in ``transport=httpx2.ASGITransport(emulator_app)`` to talk to the
local cloud in-process.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx2

from trayline import __version__, settings
from trayline.core.calls import CallObserver, CallRecord
from trayline.core.ids import SerialNumber
from trayline.particle._transport import (
    BEFORE_SEND,
    Answer,
    RetryPolicy,
    validate_api_url,
)
from trayline.particle.auth import AccessToken
from trayline.particle.errors import (
    CloudError,
    NotAnApi,
    RateLimited,
    TransportError,
    error_for_status,
)
from trayline.particle.ratelimit import (
    DEFAULT_RATE_LIMIT,
    SERIAL_LOOKUP_LIMIT,
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
    "BEFORE_SEND",
    "DEFAULT_API_URL",
    "CallObserver",
    "CallRecord",
    "ParticleClient",
    "RetryPolicy",
    "SerialBudgetExhausted",
    "api_url_from_env",
    "validate_api_url",
]

DEFAULT_API_URL = "https://api.particle.io"
log = logging.getLogger(__name__)


def api_url_from_env(explicit: str | None = None) -> str:
    """``PARTICLE_API_URL`` or the real API, checked (:class:`InvalidApiUrl`)."""
    return validate_api_url(explicit or settings.api_url() or DEFAULT_API_URL)


class SerialBudgetExhausted(CloudError):
    """The 50-per-hour serial lookup budget is used up; ``next_at`` is when a slot frees."""

    def __init__(self, next_at: datetime) -> None:
        super().__init__(
            f"serial-number lookup budget used up (50 per hour per account); next lookup "
            f"possible at {next_at:%H:%M:%S} UTC. Import by serial number instead: import "
            f"accepts serials and needs no lookup"
        )
        self.next_at = next_at


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
        transport: httpx2.AsyncBaseTransport | None = None,
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
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx2.Timeout(timeout),
            limits=httpx2.Limits(
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

    def remove_observer(self, observer: CallObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

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
        retry: bool = True,
        wait_on_429: bool = True,
    ) -> Any:
        url = template.format(**{k: quote(str(v), safe="") for k, v in (path or {}).items()})
        route = f"{method} {template}"
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            status: int | None
            try:
                status, body = await self._attempt(
                    method, url, route, query, json, data, files, headers
                )
            except CloudError as error:
                status, failure = error.status, error
            else:
                if 200 <= status < 300:
                    self._record(method, template, status, started, attempt, None)
                    self.limiter.succeeded()
                    return body
                failure = error_for_status(status, body.content, route, body.retry_after)
            self._record(method, template, status, started, attempt, type(failure).__name__)
            if isinstance(failure, RateLimited):
                if not wait_on_429:
                    raise failure
                self.limiter.slow_down(failure.retry_after)
            if not (retry and failure.retryable) or attempt >= self.retry.max_attempts:
                raise failure
            delay = self.retry.delay(attempt, failure, self._rng)
            log.debug("%s failed (%s); retry %d in %.2fs", route, failure, attempt, delay)
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        route: str,
        query: Mapping[str, str | int] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        files: Mapping[str, tuple[str, bytes, str]] | None,
        headers: Mapping[str, str],
    ) -> tuple[int, Any]:
        """One attempt: a slot, the caller's intent hook, the request; the slot is always
        settled (sent) or released (cancelled before the bytes went out)."""
        slot = await self.limiter.acquire()
        sent = False
        try:
            hook = BEFORE_SEND.get()
            if hook is not None:
                await hook()
            sent = True
            self.requests_sent += 1
            try:
                response = await self._http.request(
                    method, url, params=query, json=json, data=data, files=files, headers=headers
                )
            except (httpx2.TransportError, OSError) as exc:
                raise TransportError(
                    f"no answer from {self.base_url} ({type(exc).__name__})", route=route
                ) from None
        finally:
            if sent:
                self.limiter.settle(slot)
            else:
                self.limiter.release(slot)
        status = response.status_code
        key = str(status)
        self.status_counts[key] = self.status_counts.get(key, 0) + 1
        answer = Answer.of(response)
        if answer.not_json and status < 500:
            raise NotAnApi(
                f"{self.base_url} answered {route} with {answer.kind}, not the Particle API's "
                f"JSON: check PARTICLE_API_URL (e.g. https://api.particle.io)",
                status=status,
                route=route,
            )
        if 200 <= status < 300:
            return status, answer.content
        return status, answer

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
        try:
            body = await self._request(
                "GET", "/v1/serial_numbers/{serial}", {"serial": serial}, wait_on_429=False
            )
        except RateLimited as exc:
            # The cloud's own count (other tools, another database) says the budget is
            # spent: say so now, with when it refills, instead of sleeping for up to an hour.
            wait = exc.retry_after if exc.retry_after is not None else SERIAL_LOOKUP_LIMIT.seconds
            raise SerialBudgetExhausted(datetime.now(UTC) + timedelta(seconds=wait)) from None
        return SerialLookupResult.from_body(serial, body)

    # -- §1 the account -------------------------------------------------------------------

    async def whoami(self) -> str:
        """The username of the account the token belongs to (``GET /v1/user``).

        It names the account a provisioning job belongs to. This is the first
        request a command sends, so an API URL that answers anything but the
        Particle API's JSON fails here, at once, as :class:`NotAnApi`.
        """
        body = await self._request("GET", "/v1/user")
        name = body.get("username") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise NotAnApi(
                f"{self.base_url} answered GET /v1/user without a username: "
                f"check PARTICLE_API_URL (e.g. https://api.particle.io)",
                route="GET /v1/user",
            )
        return name.strip()

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

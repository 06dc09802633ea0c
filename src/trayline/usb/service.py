"""The host side of Particle's USB service protocol (INIT / CHECK / SEND / RECV / RESET).

A control request to a Particle device is not one USB transfer but a short
conversation on endpoint 0 (spec §3.2, particle-usb ``usb-protocol.js``):

1. **INIT** (IN, bRequest 1, wValue = payload size, wIndex = request type):
   the device allocates a request slot and answers OK + id, PENDING + id
   while it allocates a buffer for a payload over 64 bytes, or BUSY when 4
   requests are already active;
2. **CHECK** (IN, 2) until the buffer is ready (PENDING → OK, or NO_MEMORY);
3. **SEND** (OUT, 3) the payload in chunks of at most 4096 bytes; the
   handler runs when the last byte arrives;
4. **CHECK** with back-off (50, 50, 100, 100, 250, 250, 500, 500, 1000 ms,
   then 1000 ms) until OK with the handler's RESULT and the reply SIZE;
5. **RECV** (IN, 4) the reply in chunks;
6. **RESET** (IN, 5, wIndex = id, 0 = all) cancels; a new session starts
   with RESET(0) to drop requests an earlier process left behind.

:class:`ServiceClient` runs that conversation over a :class:`ControlPipe`
(two methods: control IN and control OUT), so the same code drives pyusb
(:class:`trayline.usb.pipe.PyUsbPipe`) and the unit tests' in-memory device.
It is thread-safe: several threads may send requests to one device; at most
:data:`MAX_ACTIVE` are in flight at once and the rest wait their turn on the
host (the device would answer BUSY anyway). A BUSY from the device (another
process talking to it) is retried with the same back-off until the timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from trayline.usb.protocol import (
    BACKOFF_MS,
    CHECK,
    DEFAULT_TIMEOUT_S,
    INIT,
    MAX_ACTIVE,
    MAX_CHUNK,
    RECV,
    RESET,
    SEND,
    SERVICE_REPLY_LENGTH,
    TRANSFER_TIMEOUT_MS,
    ServiceReply,
    decode_service_reply,
)
from trayline.usb.results import (
    RequestTimeout,
    ServiceError,
    ServiceStatus,
    error_for_result,
)

__all__ = ["ControlPipe", "Reply", "ServiceClient"]


class ControlPipe(Protocol):
    """Endpoint 0 of one device, vendor requests to the device recipient."""

    def control_in(
        self, request: int, value: int, index: int, length: int, timeout_ms: int
    ) -> bytes:
        """bmRequestType 0xC0; returns the data stage (raises on STALL or disconnect)."""
        ...

    def control_out(
        self, request: int, value: int, index: int, data: bytes, timeout_ms: int
    ) -> None:
        """bmRequestType 0x40 with ``data`` as the data stage."""
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """What a request's handler answered: its result code and reply payload."""

    result: int
    data: bytes = b""


class ServiceClient:
    """Sends control requests to one device over the service protocol.

    ``backoff_ms`` and ``sleep``/``clock`` are injectable for tests; the
    defaults are particle-usb's schedule and real time. ``device`` names the
    device in every error.
    """

    def __init__(
        self,
        pipe: ControlPipe,
        *,
        device: str = "",
        backoff_ms: Sequence[int] = BACKOFF_MS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pipe = pipe
        self.device = device
        self._backoff = tuple(backoff_ms) or (0,)
        self._sleep = sleep
        self._clock = clock
        self._slots = threading.BoundedSemaphore(MAX_ACTIVE)
        self._wire = threading.Lock()

    # -- single exchanges -------------------------------------------------

    def _service(self, request: int, value: int, index: int) -> ServiceReply:
        with self._wire:
            data = self._pipe.control_in(
                request, value, index, SERVICE_REPLY_LENGTH, TRANSFER_TIMEOUT_MS
            )
        return decode_service_reply(data)

    def reset(self, request_id: int = 0) -> ServiceReply:
        """RESET one request, or every request of every earlier session with id 0."""
        return self._service(RESET, 0, request_id)

    def _delay(self, attempt: int) -> float:
        return self._backoff[min(attempt, len(self._backoff) - 1)] / 1000.0

    def _fail(self, status: int, what: str, request_type: int) -> ServiceError:
        name = ServiceStatus(status).name if status in ServiceStatus._value2member_map_ else status
        return ServiceError(
            status, f"request {request_type}: {what} answered {name}", device=self.device
        )

    # -- the conversation -------------------------------------------------

    def _init(self, request_type: int, size: int, deadline: float) -> ServiceReply:
        attempt = 0
        while True:
            reply = self._service(INIT, size, request_type)
            if reply.status in (ServiceStatus.OK, ServiceStatus.PENDING) and reply.id is not None:
                return reply
            if reply.status != ServiceStatus.BUSY:
                raise self._fail(reply.status, "INIT", request_type)
            if self._clock() >= deadline:
                raise RequestTimeout(
                    f"request {request_type}: device stayed BUSY (4 requests active)",
                    device=self.device,
                )
            self._sleep(self._delay(attempt))
            attempt += 1

    def _check_until(self, request_type: int, request_id: int, deadline: float) -> ServiceReply:
        """Poll CHECK — at once, then with back-off — until the status is not PENDING."""
        attempt = 0
        while True:
            reply = self._service(CHECK, 0, request_id)
            if reply.status != ServiceStatus.PENDING:
                if reply.status != ServiceStatus.OK:
                    raise self._fail(reply.status, "CHECK", request_type)
                return reply
            if self._clock() >= deadline:
                self.reset(request_id)
                raise RequestTimeout(
                    f"request {request_type} did not finish in time; cancelled", device=self.device
                )
            self._sleep(self._delay(attempt))
            attempt += 1

    def _send(self, request_id: int, payload: bytes) -> None:
        for pos in range(0, len(payload), MAX_CHUNK):
            with self._wire:
                self._pipe.control_out(
                    SEND, 0, request_id, payload[pos : pos + MAX_CHUNK], TRANSFER_TIMEOUT_MS
                )

    def _recv(self, request_id: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            want = min(MAX_CHUNK, size - len(out))
            with self._wire:
                chunk = self._pipe.control_in(RECV, 0, request_id, want, TRANSFER_TIMEOUT_MS)
            if not chunk:
                raise ServiceError(
                    ServiceStatus.ERROR,
                    f"RECV returned nothing after {len(out)} of {size} bytes",
                    device=self.device,
                )
            out += chunk
        return bytes(out)

    def send(
        self, request_type: int, payload: bytes = b"", *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> Reply:
        """Run one request to completion and return its result and reply (no raise on result)."""
        if len(payload) > 0xFFFF:
            raise ValueError(
                f"request {request_type}: payload of {len(payload)} bytes exceeds 65535"
            )
        deadline = self._clock() + timeout
        with self._slots:
            init = self._init(request_type, len(payload), deadline)
            assert init.id is not None
            rid = init.id
            try:
                if init.status == ServiceStatus.PENDING:
                    self._check_until(request_type, rid, deadline)
                if payload:
                    self._send(rid, payload)
                done = self._check_until(request_type, rid, deadline)
                size = done.size or 0
                data = self._recv(rid, size) if size else b""
            except ServiceError as exc:
                if exc.status != ServiceStatus.NOT_FOUND:
                    self._quiet_reset(rid)
                raise
            return Reply(done.result if done.result is not None else 0, data)

    def _quiet_reset(self, request_id: int) -> None:
        try:
            self.reset(request_id)
        except Exception:  # best effort: the original error is the one to report
            return

    def request(
        self, request_type: int, payload: bytes = b"", *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> bytes:
        """Run a request; a non-zero result raises its typed :class:`RequestFailed`."""
        reply = self.send(request_type, payload, timeout=timeout)
        if reply.result != 0:
            raise error_for_result(reply.result, request_type, device=self.device)
        return reply.data

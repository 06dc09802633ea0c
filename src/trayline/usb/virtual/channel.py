"""The device side of the service protocol: what Device OS's ``usb_control_request_channel`` does.

A virtual device answers INIT / CHECK / SEND / RECV / RESET exactly as spec
§3.2 and §8 describe, so the host client is tested against the protocol, not
against itself:

* at most :data:`MAX_ACTIVE` (4) requests are active; a fifth INIT answers
  BUSY;
* a payload of up to 64 bytes gets a pooled buffer at INIT (OK); a larger one
  answers PENDING while a buffer is "allocated" (ready ``alloc_s`` of device
  time later, NO_MEMORY above ``max_payload``);
* the handler runs when the last payload byte arrives (at INIT for an empty
  payload); CHECK answers PENDING until the handler's device time has passed,
  then OK with RESULT and, when there is a reply, SIZE;
* RECV hands out the reply; the request is freed once its reply is consumed
  (at the final CHECK when there is none) and only then does the handler's
  ``after`` action run (a reset happens after the host has its answer);
* CHECK / SEND / RECV for an unknown id → :class:`Stall` (a USB STALL) or
  NOT_FOUND; RESET(0) cancels every request, RESET(id) one.

Handlers are plain callables ``(request type, payload) -> Outcome``. Time is
the device's: ``clock`` returns real seconds and ``scale`` converts a
handler's simulated seconds into real ones (0 = instant), so a 60 s NCP update
at scale 0.01 keeps CHECK answering PENDING for 0.6 s. No global lock: each
channel has its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from trayline.usb.protocol import (
    CHECK,
    INIT,
    MAX_ACTIVE,
    RECV,
    RESET,
    SEND,
    SMALL_PAYLOAD,
    ServiceReply,
    encode_service_reply,
)
from trayline.usb.results import ServiceStatus

__all__ = ["Handler", "Outcome", "ServiceChannel", "Stall"]


class Stall(Exception):
    """The device STALLs endpoint 0 (an unknown request id, a SEND past the declared size)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler produced: result code, reply bytes, device time, action after the reply."""

    result: int = 0
    reply: bytes = b""
    seconds: float = 0.0
    after: Callable[[], None] | None = None


Handler = Callable[[int, bytes], Outcome]


class _State(Enum):
    ALLOCATING = "allocating"
    RECEIVING = "receiving"
    RUNNING = "running"
    DONE = "done"


@dataclass(slots=True)
class _Request:
    id: int
    type: int
    size: int
    state: _State
    ready_at: float = 0.0
    payload: bytearray = field(default_factory=bytearray)
    outcome: Outcome | None = None
    sent: int = 0


class ServiceChannel:
    """One device's request table and the five service requests that drive it."""

    def __init__(
        self,
        handler: Handler,
        *,
        scale: float = 0.0,
        alloc_s: float = 0.002,
        max_payload: int = 32 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handler = handler
        self.scale = scale
        self._alloc_s = alloc_s
        self._max_payload = max_payload
        self._clock = clock
        self._requests: dict[int, _Request] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self._after: list[Callable[[], None]] = []

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._requests)

    def handle_in(self, request: int, value: int, index: int, length: int) -> bytes:
        """A vendor IN setup on the channel: INIT, CHECK, RECV or RESET.

        A handler's ``after`` action runs once the lock is released, so it may
        reset the device (and this channel) without deadlocking.
        """
        with self._lock:
            if request == INIT:
                out = encode_service_reply(self._init(index, value))
            elif request == CHECK:
                out = encode_service_reply(self._check(index))
            elif request == RESET:
                out = encode_service_reply(self._reset(index))
            elif request == RECV:
                out = self._recv(index, length)
            else:
                raise Stall(f"unknown service request {request}")
            after, self._after = self._after, []
        for action in after:
            action()
        return out

    def handle_out(self, request: int, index: int, data: bytes) -> None:
        """A vendor OUT setup on the channel: SEND."""
        with self._lock:
            if request != SEND:
                raise Stall(f"unknown service OUT request {request}")
            self._send(index, data)

    # -- the five requests (called with the lock held) ------------------------

    def _new_id(self) -> int:
        while self._next_id in self._requests or self._next_id == 0:
            self._next_id = (self._next_id + 1) & 0xFFFF
        rid = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFF
        return rid

    def _init(self, request_type: int, size: int) -> ServiceReply:
        if len(self._requests) >= MAX_ACTIVE:
            return ServiceReply(ServiceStatus.BUSY)
        rid = self._new_id()
        if size == 0:
            req = _Request(rid, request_type, 0, _State.RECEIVING)
            self._requests[rid] = req
            self._run(req)
            return ServiceReply(ServiceStatus.OK, rid)
        if size <= SMALL_PAYLOAD:
            self._requests[rid] = _Request(rid, request_type, size, _State.RECEIVING)
            return ServiceReply(ServiceStatus.OK, rid)
        ready = self._clock() + self._alloc_s * self.scale
        self._requests[rid] = _Request(rid, request_type, size, _State.ALLOCATING, ready)
        return ServiceReply(ServiceStatus.PENDING, rid)

    def _run(self, req: _Request) -> None:
        outcome = self._handler(req.type, bytes(req.payload))
        req.outcome = outcome
        req.payload = bytearray()
        req.state = _State.RUNNING
        req.ready_at = self._clock() + outcome.seconds * self.scale

    def _check(self, rid: int) -> ServiceReply:
        req = self._requests.get(rid)
        if req is None:
            return ServiceReply(ServiceStatus.NOT_FOUND)
        now = self._clock()
        if req.state is _State.ALLOCATING:
            if now < req.ready_at:
                return ServiceReply(ServiceStatus.PENDING)
            if req.size > self._max_payload:
                del self._requests[rid]
                return ServiceReply(ServiceStatus.NO_MEMORY)
            req.state = _State.RECEIVING
            return ServiceReply(ServiceStatus.OK)
        if req.state is _State.RECEIVING:
            return ServiceReply(ServiceStatus.OK)
        if req.state is _State.RUNNING:
            if now < req.ready_at:
                return ServiceReply(ServiceStatus.PENDING)
            req.state = _State.DONE
        assert req.outcome is not None
        reply = req.outcome.reply
        if not reply:
            self._free(req)
            return ServiceReply(ServiceStatus.OK, result=req.outcome.result)
        return ServiceReply(ServiceStatus.OK, size=len(reply), result=req.outcome.result)

    def _send(self, rid: int, data: bytes) -> None:
        req = self._requests.get(rid)
        if req is None or req.state is not _State.RECEIVING:
            raise Stall(f"SEND for request {rid} that is not waiting for a payload")
        if len(req.payload) + len(data) > req.size:
            del self._requests[rid]
            raise Stall(f"SEND past the declared size of request {rid} ({req.size} bytes)")
        req.payload += data
        if len(req.payload) == req.size:
            self._run(req)

    def _recv(self, rid: int, length: int) -> bytes:
        req = self._requests.get(rid)
        if req is None or req.state is not _State.DONE or req.outcome is None:
            raise Stall(f"RECV for request {rid} that has no reply ready")
        chunk = req.outcome.reply[req.sent : req.sent + length]
        req.sent += len(chunk)
        if req.sent >= len(req.outcome.reply):
            self._free(req)
        return chunk

    def _free(self, req: _Request) -> None:
        self._requests.pop(req.id, None)
        if req.outcome is not None and req.outcome.after is not None:
            self._after.append(req.outcome.after)

    def _reset(self, rid: int) -> ServiceReply:
        if rid == 0:
            self._requests.clear()
            return ServiceReply(ServiceStatus.OK)
        if self._requests.pop(rid, None) is None:
            return ServiceReply(ServiceStatus.NOT_FOUND)
        return ServiceReply(ServiceStatus.OK)

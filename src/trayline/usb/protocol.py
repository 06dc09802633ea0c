"""Bytes of Particle's USB service protocol, shared by the host and the virtual device.

Setup-packet numbers (bRequest 1-5 are INIT, CHECK, SEND, RECV, RESET; 0x50
is the raw vendor request), limits (4 active requests, 64-byte pooled
payloads, 4096-byte chunks) and the service reply layout of spec §3.2:
``u32 flags · u16 status · [u16 id] · [u32 size] · [i32 result]``,
little-endian, a field present only when its flag is set (0x01 STATUS,
mandatory; 0x02 ID; 0x04 SIZE; 0x08 RESULT).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from trayline.usb.results import ServiceError, ServiceStatus

__all__ = [
    "BACKOFF_MS",
    "CHECK",
    "DEFAULT_TIMEOUT_S",
    "INIT",
    "MAX_ACTIVE",
    "MAX_CHUNK",
    "RAW_VENDOR_REQUEST",
    "RECV",
    "RESET",
    "SEND",
    "SERVICE_REPLY_LENGTH",
    "SMALL_PAYLOAD",
    "TRANSFER_TIMEOUT_MS",
    "ServiceReply",
    "decode_service_reply",
    "encode_service_reply",
]

BACKOFF_MS: tuple[int, ...] = (50, 50, 100, 100, 250, 250, 500, 500, 1000)
"""particle-usb's delays between CHECKs; the last one repeats."""
MAX_ACTIVE = 4
MAX_CHUNK = 4096
SMALL_PAYLOAD = 64
"""Payloads up to this size get a pooled buffer at INIT (no PENDING)."""
SERVICE_REPLY_LENGTH = 64
DEFAULT_TIMEOUT_S = 60.0
TRANSFER_TIMEOUT_MS = 5000

INIT, CHECK, SEND, RECV, RESET = 1, 2, 3, 4, 5

FLAG_STATUS, FLAG_ID, FLAG_SIZE, FLAG_RESULT = 0x01, 0x02, 0x04, 0x08


RAW_VENDOR_REQUEST = 0x50
"""bRequest 'P': raw vendor requests with the request type in wIndex (spec §3.3)."""


@dataclass(frozen=True, slots=True)
class ServiceReply:
    """One decoded service reply; fields absent from the reply are ``None``."""

    status: int
    id: int | None = None
    size: int | None = None
    result: int | None = None


def encode_service_reply(reply: ServiceReply) -> bytes:
    """``u32 flags · u16 status · [u16 id] · [u32 size] · [i32 result]``, little-endian."""
    flags = FLAG_STATUS
    body = struct.pack("<H", reply.status)
    if reply.id is not None:
        flags |= FLAG_ID
        body += struct.pack("<H", reply.id)
    if reply.size is not None:
        flags |= FLAG_SIZE
        body += struct.pack("<I", reply.size)
    if reply.result is not None:
        flags |= FLAG_RESULT
        body += struct.pack("<i", reply.result)
    return struct.pack("<I", flags) + body


def decode_service_reply(data: bytes) -> ServiceReply:
    """Parse a service reply; :class:`ServiceError` when it is short or lacks the status."""
    try:
        (flags,) = struct.unpack_from("<I", data, 0)
        if not flags & FLAG_STATUS:
            raise ServiceError(ServiceStatus.ERROR, "service reply without a status field")
        pos = 4
        (status,) = struct.unpack_from("<H", data, pos)
        pos += 2
        rid = size = result = None
        if flags & FLAG_ID:
            (rid,) = struct.unpack_from("<H", data, pos)
            pos += 2
        if flags & FLAG_SIZE:
            (size,) = struct.unpack_from("<I", data, pos)
            pos += 4
        if flags & FLAG_RESULT:
            (result,) = struct.unpack_from("<i", data, pos)
    except struct.error:
        raise ServiceError(
            ServiceStatus.ERROR, f"short service reply ({len(data)} bytes)"
        ) from None
    return ServiceReply(status, rid, size, result)

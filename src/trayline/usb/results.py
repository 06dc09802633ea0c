"""Result codes of Particle's control requests, and the typed errors they become.

A control request travels in two layers, and each layer can say no:

* the **service protocol** (spec §3.2) answers every INIT / CHECK / SEND /
  RECV / RESET with a *status*: OK, ERROR, PENDING, BUSY (already 4 requests
  active), NO_MEMORY (the device could not allocate the payload buffer),
  NOT_FOUND (unknown request id). Those are transport problems:
  :class:`ServiceError`;
* the **request handler** on the device answers with a ``system_error_t``
  *result* (spec §3.5): 0 OK, −120 NOT_SUPPORTED, −210 INVALID_STATE …
  Those are the device's verdict on what was asked: :class:`RequestFailed`
  and one subclass per code a station acts on, so callers write
  ``except NotSupported`` instead of comparing integers (Device OS ≥ 4.0
  answers NOT_SUPPORTED to "clear setup done": that is "not needed", not a
  failure).

Unknown result codes are kept as :class:`RequestFailed` with the number and
"unknown result code" in the message, never refused.
Source of the table: particle-usb ``src/result.js`` (``system_error_t``).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "RESULT_MESSAGES",
    "Aborted",
    "AlreadyExists",
    "BadData",
    "Cancelled",
    "DeviceGone",
    "InvalidArgument",
    "InvalidState",
    "NotAllowed",
    "NotFound",
    "NotSupported",
    "RequestFailed",
    "RequestTimeout",
    "Result",
    "ServiceError",
    "ServiceStatus",
    "Stalled",
    "TooLarge",
    "UsbError",
    "UsbPermissionDenied",
    "error_for_result",
]


class ServiceStatus(IntEnum):
    """Status of one service-protocol exchange (``usb_control_request_channel``)."""

    OK = 0
    ERROR = 1
    PENDING = 2
    BUSY = 3
    NO_MEMORY = 4
    NOT_FOUND = 5


class Result(IntEnum):
    """``system_error_t``: what a request handler on the device returned."""

    OK = 0
    ERROR = -100
    BUSY = -110
    NOT_SUPPORTED = -120
    NOT_ALLOWED = -130
    CANCELLED = -140
    ABORTED = -150
    TIMEOUT = -160
    NOT_FOUND = -170
    ALREADY_EXISTS = -180
    TOO_LARGE = -190
    LIMIT_EXCEEDED = -200
    INVALID_STATE = -210
    IO_ERROR = -220
    NETWORK_ERROR = -230
    PROTOCOL_ERROR = -240
    INTERNAL_ERROR = -250
    NO_MEMORY = -260
    INVALID_ARGUMENT = -270
    BAD_DATA = -280
    OUT_OF_RANGE = -290


RESULT_MESSAGES: dict[int, str] = {
    Result.OK: "operation succeeded",
    Result.ERROR: "unknown error",
    Result.BUSY: "resource is busy",
    Result.NOT_SUPPORTED: "not supported",
    Result.NOT_ALLOWED: "not allowed",
    Result.CANCELLED: "operation cancelled",
    Result.ABORTED: "operation aborted",
    Result.TIMEOUT: "timeout error",
    Result.NOT_FOUND: "not found",
    Result.ALREADY_EXISTS: "already exists",
    Result.TOO_LARGE: "data is too large",
    Result.LIMIT_EXCEEDED: "limit exceeded",
    Result.INVALID_STATE: "invalid state",
    Result.IO_ERROR: "IO error",
    Result.NETWORK_ERROR: "network error",
    Result.PROTOCOL_ERROR: "protocol error",
    Result.INTERNAL_ERROR: "internal error",
    Result.NO_MEMORY: "memory allocation error",
    Result.INVALID_ARGUMENT: "invalid argument",
    Result.BAD_DATA: "invalid data format",
    Result.OUT_OF_RANGE: "out of range",
}


class UsbError(Exception):
    """Anything that went wrong talking to a Particle device over USB.

    ``device`` names the device (its ID, or the bus/address when the ID is not
    known yet) so the message alone tells an operator which unit to look at.
    """

    def __init__(self, message: str, *, device: str = "") -> None:
        self.device = device
        super().__init__(f"{device}: {message}" if device else message)


class DeviceGone(UsbError):
    """The device disconnected, reset, or never enumerated within the wait."""


class Stalled(UsbError):
    """The device STALLed a control transfer (unknown request id, unsupported request)."""


class UsbPermissionDenied(UsbError):
    """The OS refused to open the device (Linux: udev rules missing; Windows: no WinUSB)."""


class ServiceError(UsbError):
    """The service protocol refused an exchange (BUSY, NO_MEMORY, NOT_FOUND, ERROR)."""

    def __init__(self, status: int, message: str, *, device: str = "") -> None:
        self.status = status
        super().__init__(message, device=device)


class RequestTimeout(UsbError):
    """The device did not finish a request within the host's timeout; it was cancelled."""


class RequestFailed(UsbError):
    """The device's handler returned a non-zero ``system_error_t`` result."""

    def __init__(self, result: int, request_type: int, *, device: str = "") -> None:
        self.result = result
        self.request_type = request_type
        text = RESULT_MESSAGES.get(result, "unknown result code")
        try:
            name = Result(result).name
        except ValueError:
            name = str(result)
        super().__init__(f"request {request_type} failed: {name} ({result}, {text})", device=device)


class NotSupported(RequestFailed):
    """−120: the device's firmware does not do this (e.g. setup-done on Device OS ≥ 4.0)."""


class NotAllowed(RequestFailed):
    """−130: refused by policy (device protection, wrong mode)."""


class Cancelled(RequestFailed):
    """−140."""


class Aborted(RequestFailed):
    """−150."""


class NotFound(RequestFailed):
    """−170: e.g. no SIM for an ICCID request."""


class AlreadyExists(RequestFailed):
    """−180."""


class TooLarge(RequestFailed):
    """−190: a firmware image larger than the slot it is meant for."""


class InvalidState(RequestFailed):
    """−210: e.g. firmware-update data without a started update."""


class InvalidArgument(RequestFailed):
    """−270."""


class BadData(RequestFailed):
    """−280: a module that fails validation (CRC, platform, dependencies)."""


_TYPED: dict[int, type[RequestFailed]] = {
    Result.NOT_SUPPORTED: NotSupported,
    Result.NOT_ALLOWED: NotAllowed,
    Result.CANCELLED: Cancelled,
    Result.ABORTED: Aborted,
    Result.NOT_FOUND: NotFound,
    Result.ALREADY_EXISTS: AlreadyExists,
    Result.TOO_LARGE: TooLarge,
    Result.INVALID_STATE: InvalidState,
    Result.INVALID_ARGUMENT: InvalidArgument,
    Result.BAD_DATA: BadData,
}


def error_for_result(result: int, request_type: int, *, device: str = "") -> RequestFailed:
    """The exception for a non-zero result: a typed subclass where one exists."""
    cls = _TYPED.get(result, RequestFailed)
    return cls(result, request_type, device=device)

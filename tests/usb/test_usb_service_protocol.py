"""The service protocol (spec §3.2) between trayline's host client and the device state machine."""

from __future__ import annotations

import threading

import pytest
from usbkit import FakeClock, pair

from trayline.usb.protocol import (
    BACKOFF_MS,
    CHECK,
    INIT,
    RECV,
    RESET,
    SEND,
    ServiceReply,
    decode_service_reply,
    encode_service_reply,
)
from trayline.usb.results import (
    RESULT_MESSAGES,
    BadData,
    InvalidState,
    NotSupported,
    RequestFailed,
    RequestTimeout,
    Result,
    ServiceError,
    ServiceStatus,
    error_for_result,
)
from trayline.usb.virtual.channel import Outcome, ServiceChannel, Stall


def echo(request_type: int, payload: bytes) -> Outcome:
    return Outcome(0, payload[::-1])


def test_empty_request_runs_at_init_and_reply_is_received() -> None:
    client, channel, wire, _ = pair(lambda t, p: Outcome(0, b"id:" + str(t).encode()))
    assert client.request(20) == b"id:20"
    kinds = [entry[0] for entry in wire.log]
    assert kinds == [INIT, CHECK, RECV]
    assert channel.active == 0


def test_small_payload_gets_a_buffer_at_init_without_pending() -> None:
    client, _, wire, clock = pair(echo)
    assert client.request(73, b"\x08\x01") == b"\x01\x08"
    assert [e[0] for e in wire.log] == [INIT, SEND, CHECK, RECV]
    assert clock.sleeps == []


def test_large_payload_waits_for_pending_buffer_then_is_sent_in_4096_byte_chunks() -> None:
    client, channel, wire, _ = pair(echo)
    payload = bytes(range(256)) * 40  # 10 240 bytes
    reply = client.request(253, payload)
    assert reply == payload[::-1]
    sends = [e for e in wire.log if e[0] == SEND]
    assert [e[1] for e in sends] == [4096, 4096, 2048]
    recvs = [e for e in wire.log if e[0] == RECV]
    assert len(recvs) == 3  # the reply comes back in chunks too
    assert wire.log[1][0] == CHECK  # PENDING at INIT, then CHECK until the buffer is ready
    assert channel.active == 0


def test_init_answers_pending_for_payloads_over_64_bytes() -> None:
    channel = ServiceChannel(echo, scale=1.0, clock=FakeClock())
    small = decode_service_reply(channel.handle_in(INIT, 64, 90, 64))
    large = decode_service_reply(channel.handle_in(INIT, 65, 90, 64))
    assert small.status == ServiceStatus.OK and small.id is not None
    assert large.status == ServiceStatus.PENDING and large.id is not None


def test_check_backs_off_as_particle_usb_while_the_handler_runs() -> None:
    client, _, _, clock = pair(lambda t, p: Outcome(0, b"", seconds=3.0))
    client.request(251)
    assert [round(s * 1000) for s in clock.sleeps[:9]] == list(BACKOFF_MS)
    assert all(round(s * 1000) == 1000 for s in clock.sleeps[9:])
    assert sum(clock.sleeps) >= 3.0


def test_pending_payload_handler_result_and_reply_size_in_check() -> None:
    clock = FakeClock()
    channel = ServiceChannel(
        lambda t, p: Outcome(-120, b"xyz", seconds=1.0), scale=1.0, clock=clock
    )
    rid = decode_service_reply(channel.handle_in(INIT, 0, 73, 64)).id
    assert rid is not None
    assert (
        decode_service_reply(channel.handle_in(CHECK, 0, rid, 64)).status == ServiceStatus.PENDING
    )
    clock.now += 1.0
    done = decode_service_reply(channel.handle_in(CHECK, 0, rid, 64))
    assert (done.status, done.result, done.size) == (ServiceStatus.OK, -120, 3)
    assert channel.handle_in(RECV, 0, rid, 64) == b"xyz"
    assert channel.active == 0


def test_fifth_init_is_busy_and_reset_zero_cancels_everything() -> None:
    channel = ServiceChannel(echo, scale=1.0, clock=FakeClock())
    ids = [decode_service_reply(channel.handle_in(INIT, 10, 90, 64)).id for _ in range(4)]
    assert len(set(ids)) == 4 and channel.active == 4
    assert decode_service_reply(channel.handle_in(INIT, 0, 20, 64)).status == ServiceStatus.BUSY
    assert decode_service_reply(channel.handle_in(RESET, 0, 0, 64)).status == ServiceStatus.OK
    assert channel.active == 0
    for rid in ids:
        assert (
            decode_service_reply(channel.handle_in(CHECK, 0, rid or 0, 64)).status
            == ServiceStatus.NOT_FOUND
        )
        with pytest.raises(Stall):
            channel.handle_out(SEND, rid or 0, b"x")
    assert decode_service_reply(channel.handle_in(INIT, 0, 20, 64)).status == ServiceStatus.OK


def test_reset_one_request_leaves_the_others() -> None:
    channel = ServiceChannel(echo, scale=1.0, clock=FakeClock())
    a = decode_service_reply(channel.handle_in(INIT, 5, 90, 64)).id or 0
    b = decode_service_reply(channel.handle_in(INIT, 5, 90, 64)).id or 0
    assert decode_service_reply(channel.handle_in(RESET, 0, a, 64)).status == ServiceStatus.OK
    assert channel.active == 1
    assert (
        decode_service_reply(channel.handle_in(RESET, 0, a, 64)).status == ServiceStatus.NOT_FOUND
    )
    assert decode_service_reply(channel.handle_in(CHECK, 0, b, 64)).status == ServiceStatus.OK


def test_more_than_four_host_requests_queue_on_the_host_and_all_complete() -> None:
    active_seen: list[int] = []
    lock = threading.Lock()
    channel_box: list[ServiceChannel] = []

    def handler(request_type: int, payload: bytes) -> Outcome:
        with lock:
            active_seen.append(channel_box[0]._requests.__len__())
        return Outcome(0, payload + b"!", seconds=0.001)

    client, channel, _, _ = pair(handler, scale=0.0)
    channel_box.append(channel)
    results: dict[int, bytes] = {}

    def worker(i: int) -> None:
        results[i] = client.request(10, f"req{i}".encode())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"req{i}!".encode() for i in range(12)}
    assert max(active_seen) <= 4
    assert channel.active == 0


def test_device_busy_is_retried_until_a_slot_frees() -> None:
    client, channel, _, clock = pair(echo)
    held = [decode_service_reply(channel.handle_in(INIT, 3, 10, 64)).id for _ in range(4)]
    original = clock.sleep

    def sleep_and_free(seconds: float) -> None:
        original(seconds)
        if len(clock.sleeps) == 3:
            channel.handle_in(RESET, 0, held[0] or 0, 64)

    client._sleep = sleep_and_free
    assert client.request(20, b"ab") == b"ba"
    assert len(clock.sleeps) >= 3


def test_device_busy_for_too_long_times_out() -> None:
    client, channel, _, _ = pair(echo)
    for _ in range(4):
        channel.handle_in(INIT, 3, 10, 64)
    with pytest.raises(RequestTimeout, match="BUSY"):
        client.request(20, timeout=5.0)


def test_handler_that_never_finishes_times_out_and_is_cancelled_on_the_device() -> None:
    client, channel, wire, _ = pair(lambda t, p: Outcome(0, seconds=1e9))
    with pytest.raises(RequestTimeout, match="cancelled"):
        client.request(251, timeout=10.0)
    assert wire.log[-1][0] == RESET
    assert channel.active == 0


def test_no_memory_for_a_payload_the_device_cannot_hold() -> None:
    client, channel, _, _ = pair(echo, max_payload=1000)
    with pytest.raises(ServiceError) as info:
        client.request(253, b"x" * 2000)
    assert info.value.status == ServiceStatus.NO_MEMORY
    assert channel.active == 0


def test_send_past_the_declared_size_stalls() -> None:
    channel = ServiceChannel(echo, scale=0.0, clock=FakeClock())
    rid = decode_service_reply(channel.handle_in(INIT, 4, 10, 64)).id or 0
    with pytest.raises(Stall):
        channel.handle_out(SEND, rid, b"12345")
    assert channel.active == 0


def test_recv_before_the_handler_finished_stalls() -> None:
    clock = FakeClock()
    channel = ServiceChannel(lambda t, p: Outcome(0, b"late", seconds=5), scale=1.0, clock=clock)
    rid = decode_service_reply(channel.handle_in(INIT, 0, 10, 64)).id or 0
    with pytest.raises(Stall):
        channel.handle_in(RECV, 0, rid, 64)


def test_after_action_runs_only_once_the_reply_is_consumed() -> None:
    ran: list[str] = []
    clock = FakeClock()
    channel = ServiceChannel(
        lambda t, p: Outcome(0, b"ok", after=lambda: ran.append("reset")), scale=0.0, clock=clock
    )
    rid = decode_service_reply(channel.handle_in(INIT, 0, 40, 64)).id or 0
    decode_service_reply(channel.handle_in(CHECK, 0, rid, 64))
    assert ran == []
    channel.handle_in(RECV, 0, rid, 1)
    assert ran == []
    channel.handle_in(RECV, 0, rid, 1)
    assert ran == ["reset"]


@pytest.mark.parametrize("code", [r.value for r in Result if r is not Result.OK])
def test_every_result_code_becomes_a_typed_error(code: int) -> None:
    client, _, _, _ = pair(lambda t, p: Outcome(code))
    with pytest.raises(RequestFailed) as info:
        client.request(90)
    err = info.value
    assert err.result == code and err.request_type == 90
    assert Result(code).name in str(err) and RESULT_MESSAGES[code] in str(err)
    assert type(err) is type(error_for_result(code, 90))
    assert "dev1" in str(err)


def test_typed_subclasses_for_codes_a_station_acts_on() -> None:
    assert isinstance(error_for_result(-120, 73), NotSupported)
    assert isinstance(error_for_result(-210, 253), InvalidState)
    assert isinstance(error_for_result(-280, 251), BadData)
    unknown = error_for_result(-12345, 10)
    assert type(unknown) is RequestFailed and "unknown result code" in str(unknown)


def test_send_returns_the_result_without_raising() -> None:
    client, _, _, _ = pair(lambda t, p: Outcome(-120))
    assert client.send(73, b"\x08\x00").result == -120


@pytest.mark.parametrize(
    "reply",
    [
        ServiceReply(ServiceStatus.OK),
        ServiceReply(ServiceStatus.PENDING, 7),
        ServiceReply(ServiceStatus.OK, None, 300, -120),
        ServiceReply(ServiceStatus.OK, 65535, 0, 0),
    ],
)
def test_service_reply_round_trip(reply: ServiceReply) -> None:
    assert decode_service_reply(encode_service_reply(reply)) == reply


def test_service_reply_layout_is_flags_then_fields_little_endian() -> None:
    raw = encode_service_reply(ServiceReply(ServiceStatus.OK, 2, 3, -120))
    assert raw == bytes.fromhex("0f000000000002000300000088ffffff")


def test_short_or_statusless_service_reply_is_a_service_error() -> None:
    with pytest.raises(ServiceError):
        decode_service_reply(b"\x01\x00")
    with pytest.raises(ServiceError):
        decode_service_reply(b"\x02\x00\x00\x00\x00\x00\x01\x00")


def test_payload_over_65535_bytes_is_refused_before_sending() -> None:
    client, _, wire, _ = pair(echo)
    with pytest.raises(ValueError, match="65535"):
        client.request(10, b"x" * 70000)
    assert wire.log == []

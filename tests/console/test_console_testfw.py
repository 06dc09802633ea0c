"""The test-firmware client against a scripted peer on a pty: logs skipped, timeouts named."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pytest

from trayline.console import NoAnswer, TestFirmwareClient
from trayline.console.testfw import parse_answer_line


@pytest.fixture
def peer() -> Iterator[Callable[[Callable[[bytes], bytes]], str]]:
    """A fake device on a pty: ``peer(answer)`` where answer maps a request line to bytes."""
    stop = threading.Event()
    fds: list[int] = []

    def start(answer: Callable[[bytes], bytes]) -> str:
        master, slave = os.openpty()
        fds.extend((master, slave))
        import tty

        tty.setraw(slave)

        def loop() -> None:
            buffer = b""
            while not stop.is_set():
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    os.write(master, answer(line))

        threading.Thread(target=loop, daemon=True).start()
        return os.ttyname(slave)

    yield start
    stop.set()
    for fd in fds:
        os.close(fd)


def test_non_json_lines_and_unrelated_objects_are_skipped(peer) -> None:  # type: ignore[no-untyped-def]
    def answer(line: bytes) -> bytes:
        if b"hello" in line:
            return (
                b"0000012345 [system] INFO: booting\r\n"
                b"not json {\r\n[1, 2]\n"
                b'{"hello": "trayline-testfw", "protocol": 1, '
                b'"device_id": "E00FCE68AAAAAAAAAAAAAAAA", "device_os": "6.1.1"}\r\n'
            )
        return (
            b'{"log": "x"}\n{"measure": "vbat", "value": 3.9, "unit": "V"}\nnoise\n{"done": true}\n'
        )

    with TestFirmwareClient(peer(answer), timeout=3) as client:
        assert client.hello()["device_os"] == "6.1.1"
        assert client.measure(["vbat"]) == [
            {"log": "x"},
            {"measure": "vbat", "value": 3.9, "unit": "V"},
            {"done": True},
        ]


def test_a_bad_request_answer_ends_the_exchange(peer) -> None:  # type: ignore[no-untyped-def]
    path = peer(lambda line: b'{"error": "bad request: unknown cmd"}\n')
    with TestFirmwareClient(path, timeout=3) as client:
        assert client.run("radio") == [{"error": "bad request: unknown cmd"}]


def test_silence_is_a_timeout_naming_the_port_and_command(peer) -> None:  # type: ignore[no-untyped-def]
    path = peer(lambda line: b"log only\n")
    with (
        TestFirmwareClient(path, timeout=0.4) as client,
        pytest.raises(NoAnswer, match=rf"^{path}: test firmware did not answer 'setup_done'"),
    ):
        client.setup_done()


def test_parse_answer_line() -> None:
    assert parse_answer_line(b'  {"ok": true}\r') == {"ok": True}
    assert parse_answer_line(b"[1]") is None
    assert parse_answer_line(b"{bad") is None
    assert parse_answer_line(b"\xff{") is None


def test_a_late_answer_to_a_timed_out_request_is_not_read_as_the_next_answer(peer) -> None:  # type: ignore[no-untyped-def]
    """The device answers the first hello only after the host gave up; the retry gets its own."""
    import time

    calls = {"n": 0}

    def answer(line: bytes) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(0.6)  # too late for the first exchange
            return b'{"hello": "trayline-testfw", "device_id": "stale"}\n'
        return b'{"hello": "trayline-testfw", "device_id": "fresh"}\n'

    with TestFirmwareClient(peer(answer), timeout=3) as client:
        with pytest.raises(NoAnswer, match=r"in 0\.3 s"):
            client.hello(timeout=0.3)
        time.sleep(0.5)  # the stale answer is now waiting in the port
        assert client.hello()["device_id"] == "fresh"

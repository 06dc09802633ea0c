"""A customer's webhook receiver for tests, on 127.0.0.1, that fails on purpose.

A plain asyncio HTTP/1.1 server in a thread. For each POST it draws one of:

* ``drop`` — close the connection before reading the request through (no answer);
* ``error`` — answer 503;
* ``lost_ack`` — accept the message, then close without answering (the sender
  never learns it arrived, so it must re-send; the receiver drops the copy);
* ``ok`` — accept and answer 200.

It checks each request's HMAC signature (401 if wrong) and de-duplicates by
``Idempotency-Key``, like a receiver should. It records everything, and
which sender process (its pid, from the User-Agent) got each acknowledgement,
so a test can tell a legitimate re-send (never acknowledged, or the sender that
got the acknowledgement was killed) from a wrong one.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from trayline.outbox.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_ok,
)


@dataclass
class Reception:
    key: str
    serial: str
    sequence: int
    at: float
    duplicate: bool


@dataclass
class Receiver:
    secret: bytes
    fail_rate: float = 0.3
    seed: int = 7
    receptions: list[Reception] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    acked: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    """Key → (when the copy arrived, pid of the sender process) of each copy answered 200."""
    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    bad_signatures: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _decide(self) -> str:
        draw = self.rng.random()
        share = self.fail_rate / 3
        if draw < share:
            return "drop"
        if draw < 2 * share:
            return "error"
        if draw < self.fail_rate:
            return "lost_ack"
        return "ok"

    def _accept(self, headers: dict[str, str], body: bytes) -> float | None:
        """Record the message (or its duplicate) and when; None when the signature is wrong."""
        stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        if not signature_ok(self.secret, stamp, body, headers.get(SIGNATURE_HEADER.lower(), "")):
            self.bad_signatures += 1
            return None
        key = headers[IDEMPOTENCY_HEADER.lower()]
        message = json.loads(body)
        assert message["idempotency_key"] == key
        duplicate = key in self.accepted
        if not duplicate:
            self.accepted[key] = message
        at = time.monotonic()
        serial = message["unit"]["serial_number"]
        self.receptions.append(Reception(key, serial, message["sequence"], at, duplicate))
        return at

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                with self.lock:
                    self.requests += 1
                    fault = self._decide()
                    self.faults[fault] = self.faults.get(fault, 0) + 1
                if fault == "drop":
                    break
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if fault == "error":
                    await _answer(writer, 503, b"try later")
                    continue
                with self.lock:
                    received_at = self._accept(headers, body)
                if received_at is None:
                    await _answer(writer, 401, b"bad signature")
                    continue
                if fault == "lost_ack":
                    break
                with self.lock:  # which sender process this acknowledgement goes to
                    pid = int(headers.get("user-agent", "").rsplit("pid ", 1)[-1].rstrip(")"))
                    key = headers[IDEMPOTENCY_HEADER.lower()]
                    self.acked.setdefault(key, []).append((received_at, pid))
                await _answer(writer, 200, b"ok")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def start(self) -> str:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            port = self._server.sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}/units"
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="faulty-receiver", daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self.url

    def stop(self) -> None:
        """Close the server and every open connection, then end the loop and its thread."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.close()
            for writer in list(self._writers):  # the handlers then end on end-of-file
                writer.transport.abort()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        assert self._thread is not None
        self._thread.join(10)
        loop.close()


async def _answer(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    reason = {200: "OK", 401: "Unauthorized", 503: "Service Unavailable"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: text/plain\r\n\r\n".encode()
        + body
    )
    await writer.drain()

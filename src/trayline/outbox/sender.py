"""The outbox sender: POST every queued unit to the customer's webhook until it says 2xx.

Delivery is *at least once, in order per unit*:

* each pass asks the store for the oldest undelivered message of each unit
  (:func:`trayline.store.outbox.due_messages`), so a unit's second message is
  never sent before its first was acknowledged;
* a 2xx is recorded (:func:`~trayline.store.outbox.mark_sent`) right after it
  arrives; a sender killed between the two re-sends that one message on restart,
  with the same ``Idempotency-Key``, and the receiver drops the copy;
* a connection failure, timeout, 408, 425, 429 or 5xx is retried after a
  jittered exponential backoff (``retry_min`` doubling to ``retry_max``, each
  wait drawn from its upper half so restarted senders do not stampede; a
  ``Retry-After`` the receiver gives is honoured up to ``retry_max``);
* any other answer (400, 401, 403, 404, 410, 422 …) means retrying cannot help
  (a wrong secret or URL): the message is parked ``failed`` with the answer, its
  unit's later messages wait behind it, and ``trayline outbox retry`` requeues it
  once a person has fixed the cause.

Nothing is kept in memory that a restarted sender would need: the store is
the queue. While the receiver is unreachable messages simply stay pending.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx2

from trayline.outbox.canonical import canonical
from trayline.outbox.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookConfig,
    sign,
)
from trayline.store.db import Store, StoreError
from trayline.store.outbox import (
    OutboxView,
    due_messages,
    mark_failed,
    mark_retry,
    mark_sent,
    next_due_at,
)

__all__ = ["PassResult", "Sender", "SenderPolicy", "start_in_background"]

RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class SenderPolicy:
    retry_min: float = 1.0
    retry_max: float = 300.0
    timeout: float = 10.0
    poll: float = 1.0


@dataclass(slots=True)
class PassResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Sender:
    """Delivers the store's outbox to one webhook; one instance per process."""

    def __init__(
        self,
        store: Store,
        config: WebhookConfig,
        policy: SenderPolicy | None = None,
        *,
        client: httpx2.Client | None = None,
        log: Callable[[str], None] = lambda _line: None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.policy = policy or SenderPolicy()
        self.client = client or httpx2.Client(timeout=self.policy.timeout)
        self.log = log
        self.rng = rng or random.Random()

    def close(self) -> None:
        self.client.close()

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """The wait before the next try: exponential, jittered, capped."""
        cap = min(self.policy.retry_max, self.policy.retry_min * 2 ** min(attempts, 30))
        wait = self.rng.uniform(cap / 2, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.policy.retry_max))
        return timedelta(seconds=wait)

    def deliver(self, message: OutboxView) -> str:
        """POST one message; record and return ``sent``, ``retry`` or ``failed``."""
        body = canonical(message.payload)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            # which sender process sent it: a receiver's log can tell a re-send after a
            # restart from one by the same process
            "User-Agent": f"trayline-outbox (pid {os.getpid()})",
            IDEMPOTENCY_HEADER: message.idempotency_key,
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(self.config.secret, stamp, body),
        }
        where = f"message {message.id} ({message.kind} {message.serial_number})"
        try:
            response = self.client.post(self.config.url, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:120] or 'no answer'}"
            mark_retry(self.store, message.id, error, self.backoff(message.attempts))
            self.log(f"{where}: {error}; will retry")
            return "retry"
        status = response.status_code
        if 200 <= status < 300:
            mark_sent(self.store, message.id)  # at once: a crash after this sends nothing twice
            self.log(f"{where}: delivered ({status})")
            return "sent"
        error = f"HTTP {status}: {response.text[:120]}"
        if status >= 500 or status in RETRYABLE:
            after = _retry_after(response)
            mark_retry(self.store, message.id, error, self.backoff(message.attempts, after))
            self.log(f"{where}: {error}; will retry")
            return "retry"
        mark_failed(self.store, message.id, error)
        self.log(f"{where}: refused, {error}; fix the cause, then trayline outbox retry")
        return "failed"

    def run_pass(self) -> PassResult:
        """Try every message that is due now, once each."""
        result = PassResult()
        for message in due_messages(self.store):
            outcome = self.deliver(message)
            if outcome == "sent":
                result.sent += 1
            elif outcome == "retry":
                result.retried += 1
            else:
                result.failed += 1
        return result

    def run(self, stop: threading.Event, *, until_empty: bool = False) -> None:
        """Pass after pass until ``stop`` is set (or, ``until_empty``, nothing is pending)."""
        while not stop.is_set():
            result = self.run_pass()
            if until_empty and next_due_at(self.store) is None:
                return  # nothing pending that can go (a failed message holds back its unit)
            if result.sent == 0:
                stop.wait(self.policy.poll)


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def start_in_background(
    store: Store, config: WebhookConfig, policy: SenderPolicy | None = None
) -> tuple[threading.Thread, threading.Event]:
    """Run a sender in a daemon thread (``station run`` uses it); set the event to stop it.

    A store failure in the thread is logged by the caller's next ``outbox status``
    (the rows stay pending); the thread waits a poll interval and tries again.
    """
    stop = threading.Event()
    sender = Sender(store, config, policy)

    def loop() -> None:
        try:
            while not stop.is_set():
                try:
                    sender.run(stop)
                except StoreError:
                    stop.wait(sender.policy.poll)
        finally:
            sender.close()

    thread = threading.Thread(target=loop, name="trayline-outbox", daemon=True)
    thread.start()
    return thread, stop

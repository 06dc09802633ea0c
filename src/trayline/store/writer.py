"""One writer thread per run: group commits that never stall the event loop.

A rate-bound job gets an answer every few milliseconds, and each answer should
be on disk before long: a process killed at any moment must repeat only the
requests that were on the wire. Committing each answer on its own would spend
the job in fsyncs; committing every hundred loses a hundred answers to a kill.
The writer takes the middle road the databases themselves take — *group
commit*: operations queue up, and a thread commits whatever has queued, every
``interval`` seconds at most (20 ms by default), in one transaction, with
operations of one kind combined into one statement.

The event loop only puts operations on a queue. :meth:`StoreWriter.submit`
returns a future for callers that must know their write is durable before they
go on (the intent before a request goes out); everyone else fires and forgets.
A waited write shortens the gathering to ``waited_interval`` (2 ms): each
request's intent is on its way's critical path, and 20 ms on each of 32
workers' 120 ms round trips was a sixth of a rate-bound job's throughput.
A failure of the store (full disk, server gone) is kept and re-raised to every
later caller as :class:`~trayline.store.db.StoreError`, so the job stops with
one line instead of writing into the void.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy.orm import Session

from trayline.store.db import Store, StoreError

__all__ = ["StoreWriter"]

Op = Callable[[Session], None]
_STOP = object()


def _merged(ops: list[Op]) -> list[Op]:
    """The batch with mergeable operations combined: one statement per kind, not per request.

    An operation is mergeable when it has a ``merge_key`` and a ``combine``
    classmethod (the jobs repository's marks, device updates and call rows).
    Combined operations run first, in the order their kinds first appear, then
    the others in their own order. Within one commit an intent never follows a result
    that set the same device's step back to pending (the provisioning journal makes such
    an intent wait for that result's commit), so this order is safe.
    """
    groups: dict[tuple[str, ...], list[Any]] = {}
    rest: list[Op] = []
    for op in ops:
        key = getattr(op, "merge_key", None)
        if key is None:
            rest.append(op)
        else:
            groups.setdefault(key, []).append(op)
    combined: list[Op] = [
        group[0] if len(group) == 1 else type(group[0]).combine(group) for group in groups.values()
    ]
    return combined + rest


class StoreWriter:
    """Commits queued operations in groups from a thread of its own."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 0.02,
        waited_interval: float = 0.002,
        max_batch: int = 2000,
    ) -> None:
        self._store = store
        self._interval = interval
        self._waited_interval = min(waited_interval, interval)
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Op, Future[None] | None] | object] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="trayline-store-writer", daemon=True)
        self.error: StoreError | None = None
        self.commits = 0
        self._thread.start()

    # -- the event loop's side ------------------------------------------------------------

    def put(self, op: Op) -> None:
        """Queue ``op`` for the next group commit (fire and forget)."""
        self._raise_if_failed()
        self._queue.put((op, None))

    def queue_waited(self, op: Op) -> asyncio.Future[None]:
        """Queue ``op`` now; the returned future completes once it is committed.

        The op is committed whether or not anyone still waits: a caller cancelled
        while waiting (its step stopped by another worker's error) has still
        written it, and must account for it as written.
        """
        self._raise_if_failed()
        done: Future[None] = Future()
        self._queue.put((op, done))
        return asyncio.wrap_future(done)

    async def submit(self, op: Op) -> None:
        """Queue ``op`` and wait until it is committed."""
        await self.queue_waited(op)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self.submit(lambda _session: None)

    def close(self) -> None:
        """Commit what is queued and stop the thread (from any thread; idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[tuple[Op, Future[None] | None]] = []
            opened = time.monotonic()
            deadline = opened + self._interval
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
                    if item[1] is not None:  # type: ignore[index]
                        # Someone waits for this one (an intent, before its request goes
                        # out): commit within a couple of milliseconds, with whatever
                        # else comes by then, instead of a whole interval.
                        deadline = min(deadline, opened + self._waited_interval)
                if stopping or len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[tuple[Op, Future[None] | None]]) -> None:
        if not batch:
            return
        if self.error is None:
            try:
                with self._store.session() as session:
                    for op in _merged([op for op, _ in batch]):
                        op(session)
                self.commits += 1
            except StoreError as exc:
                self.error = exc
            except Exception as exc:  # a bug in an op: surface it, do not hang the callers
                self.error = StoreError(f"cannot record to the store: {type(exc).__name__}: {exc}")
        for _, done in batch:
            if done is None or done.done():
                continue
            if self.error is not None:
                done.set_exception(self.error)
            else:
                done.set_result(None)

"""One worker per job: the lease a run holds while it works a job, and its heartbeat.

Two ``provision run`` processes on the same tray would each send every request
(and, together, overrun the cloud's per-IP limit). So a run first takes the
job's lease in the store (:func:`trayline.store.jobs.take_lease`, a
compare-and-swap that works the same on SQLite and PostgreSQL). A second
process finds it held and stops at once with :class:`JobBusy`, naming the
holder — host, pid and since when — and exit code 5.

The holder renews the lease every ``ttl / 4`` (the heartbeat, from a thread so
a busy event loop cannot starve it). If the holder dies, its lease expires
after ``ttl``; on the same host a dead holder's pid is noticed at once, so a
killed run never blocks its own re-run. If a heartbeat finds the lease taken
over (the holder was paused past its expiry and another process went ahead),
the job stops rather than work alongside the new holder.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from datetime import timedelta
from types import TracebackType

from trayline.store import jobs
from trayline.store.db import Store, StoreError
from trayline.store.jobs import LeaseHolder

__all__ = ["DEFAULT_TTL", "JobBusy", "JobLease"]

DEFAULT_TTL = timedelta(seconds=60)


class JobBusy(Exception):
    """Another live process works this job; the message names it. Exit code 5."""

    def __init__(self, job_id: int, holder: LeaseHolder) -> None:
        super().__init__(
            f"job {job_id} is being worked by {holder.describe()}; wait for it to finish "
            f"(or stop it), then run the same command again"
        )
        self.job_id = job_id
        self.holder = holder


class JobLease:
    """``with JobLease(store, job_id):`` — hold the job's lease for the block, or JobBusy."""

    def __init__(self, store: Store, job_id: int, *, ttl: timedelta = DEFAULT_TTL) -> None:
        self.store = store
        self.job_id = job_id
        self.ttl = ttl
        self.me = LeaseHolder.me(str(uuid.uuid4()))
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> JobLease:
        holder = jobs.take_lease(self.store, self.job_id, self.me, self.ttl)
        if holder is not None:
            raise JobBusy(self.job_id, holder)
        self._thread = threading.Thread(
            target=self._beat, name=f"trayline-lease-{self.job_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        # On a store failure the lease expires on its own; the caller reports the failure.
        with contextlib.suppress(StoreError):
            jobs.release_lease(self.store, self.job_id, self.me.token)

    def _beat(self) -> None:
        interval = self.ttl.total_seconds() / 4
        while not self._stop.wait(interval):
            try:
                if not jobs.renew_lease(self.store, self.job_id, self.me.token, self.ttl):
                    self.lost.set()
                    return
            except StoreError:
                continue  # a passing outage: the engine meets it on its next write

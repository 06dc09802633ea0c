"""The outbox sender under faults: a receiver failing 30% of requests, the sender SIGKILLed.

The sender is a real ``trayline outbox send`` process. Every unit's messages
must arrive, the first copy of each in order per unit; a copy arrives twice
only when the receiver never acknowledged it, or when the sender was killed
between the acknowledgement and writing it down; the receiver drops every
second copy by its idempotency key.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from faultyreceiver import Receiver
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.outbox.sender import Sender, SenderPolicy
from trayline.outbox.webhook import webhook_config
from trayline.store.db import Store, open_store
from trayline.store.outbox import list_messages, outbox_counts
from trayline.store.units import EventContext, advance, register_unit

SECRET = "s3cret-shared-with-the-customer"
CTX = EventContext("st1", "A", "op")
UNITS = 50
KILLS = 10
LAUNCH = "from trayline.cli.outbox import app; app(prog_name='trayline outbox')"
"""``trayline outbox send`` itself, without importing every other command group (the web UI,
the local cloud …): the same code path, a third of the start-up time on a busy machine."""


def _fill(store: Store, units: int) -> int:
    """Units that fail, are retested, and end ready: 1 to 3 messages each."""
    total = 0
    for n in range(units):
        unit, _ = register_unit(store, f"P028OBX{n:08d}", sku="BRN404", ctx=CTX)
        fails = n % 3
        for _ in range(fails):
            advance(store, unit.id, "failed", owner=None, ctx=CTX, reason="vbat low")
        advance(store, unit.id, "ready", owner=None, ctx=CTX)
        total += fails + 1
    return total


def _sender(url: str, db: str, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TRAYLINE_OUTBOX_SECRET=SECRET)
    args = [
        sys.executable, "-c", LAUNCH, "send", "--url", url, "--db", db,
        "--retry-min", "0.02", "--retry-max", "0.2", "--interval", "0.02", "--quiet", *extra,
    ]  # fmt: skip
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_every_unit_delivered_in_order_through_faults_and_kills(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'line.db'}"
    with open_store(db) as store:
        total = _fill(store, UNITS)
    receiver = Receiver(SECRET.encode(), fail_rate=0.3)
    url = receiver.start()
    rng = random.Random(3)
    kills: list[float] = []
    killed: set[int] = set()
    try:
        for _ in range(KILLS):
            proc = _sender(url, db)
            start = receiver.requests
            wanted = start + rng.randint(1, 5)
            deadline = time.monotonic() + 30
            while receiver.requests < wanted and proc.poll() is None:
                if time.monotonic() > deadline:  # a hang guard, not a speed check
                    pytest.fail("the sender made no progress in 30 s")
                time.sleep(0.005)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            proc.send_signal(signal.SIGKILL)
            kills.append(time.monotonic())
            killed.add(proc.pid)
            proc.wait(10)
        final = _sender(url, db, "--until-empty")
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err.decode()
        assert b"0 pending" in out and b"0 failed" in out
    finally:
        receiver.stop()

    with open_store(db) as store:
        messages = list_messages(store, limit=10_000)
        assert outbox_counts(store).sent == total == len(messages)
    keys = {m.idempotency_key for m in messages}
    assert set(receiver.accepted) == keys  # every message arrived, nothing else did
    assert receiver.bad_signatures == 0

    firsts: dict[str, list[int]] = defaultdict(list)
    for r in receiver.receptions:
        if not r.duplicate:
            firsts[r.serial].append(r.sequence)
    assert len(firsts) == UNITS
    for serial, sequences in firsts.items():
        assert sequences == list(range(1, len(sequences) + 1)), serial  # in order per unit

    duplicates = [r for r in receiver.receptions if r.duplicate]
    for dup in duplicates:
        for at, pid in receiver.acked.get(dup.key, []):
            # a copy was answered 200: the message may come again only because the sender
            # that got the answer was killed before it could write "sent" down
            assert at >= dup.at or pid in killed, dup  # (its own answer: at == dup.at)
    assert receiver.faults.get("lost_ack", 0) > 0 and duplicates  # the faults did happen
    assert receiver.faults.get("drop", 0) > 0 and receiver.faults.get("error", 0) > 0
    assert len(kills) == KILLS


def test_refused_message_parks_failed_until_retried(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'line.db'}"
    store = open_store(db)
    _fill(store, 2)  # unit 0: ready; unit 1: failed, then ready
    receiver = Receiver(b"another-secret", fail_rate=0.0)  # the customer changed the secret
    url = receiver.start()
    try:
        config = webhook_config(url, SECRET, None)
        sender = Sender(store, config, SenderPolicy(retry_min=0.01, retry_max=0.02))
        result = sender.run_pass()
        assert result.failed == 2 and receiver.accepted == {}
        counts = outbox_counts(store)
        assert (counts.pending, counts.failed) == (1, 2)  # unit 1's ready waits behind
        sender.close()
        code = CliRunner().invoke(app, ["outbox", "send", "--once", "--url", url, "--db", db])
        assert code.exit_code == 2 and "TRAYLINE_OUTBOX_SECRET" in code.output  # no secret
        receiver.secret = SECRET.encode()  # fixed on the receiving side
        result_retry = CliRunner().invoke(app, ["outbox", "retry", "--all-failed", "--db", db])
        assert result_retry.exit_code == 0 and "2 message(s) requeued" in result_retry.output
        sender = Sender(store, config, SenderPolicy(retry_min=0.01, retry_max=0.02))
        for _ in range(3):
            sender.run_pass()
        sender.close()
        assert outbox_counts(store).sent == 3 and len(receiver.accepted) == 3
        status = CliRunner().invoke(app, ["outbox", "status", "--db", db])
        assert "0 pending, 3 sent, 0 failed" in status.output
    finally:
        receiver.stop()
        store.dispose()


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET)
    secret.chmod(0o644)
    db = f"sqlite:///{tmp_path / 'line.db'}"
    result = CliRunner().invoke(
        app,
        ["outbox", "send", "--once", "--url", "http://127.0.0.1:9/x", "--secret-file", str(secret),
         "--db", db],
    )  # fmt: skip
    assert result.exit_code == 2 and "0644" in result.output and str(secret) in result.output
    assert SECRET not in result.output


def test_station_delivers_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``station run`` wraps its session in ``outbox.delivering`` when a webhook is set."""
    from trayline.cli.outbox import delivering

    store = open_store(f"sqlite:///{tmp_path / 'line.db'}")
    receiver = Receiver(SECRET.encode(), fail_rate=0.0)
    url = receiver.start()
    monkeypatch.setenv("TRAYLINE_OUTBOX_URL", url)
    monkeypatch.setenv("TRAYLINE_OUTBOX_SECRET", SECRET)
    try:
        with delivering(store):
            total = _fill(store, 3)  # units completing while the station runs
            deadline = time.monotonic() + 30
            while len(receiver.accepted) < total and time.monotonic() < deadline:
                time.sleep(0.02)
        assert len(receiver.accepted) == total == outbox_counts(store).sent
    finally:
        receiver.stop()
        store.dispose()


def test_sigterm_stops_the_sender_with_143(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'line.db'}"
    with open_store(db) as store:
        total = _fill(store, 2)
    receiver = Receiver(SECRET.encode(), fail_rate=0.0)
    url = receiver.start()
    try:
        proc = _sender(url, db)
        deadline = time.monotonic() + 60
        while len(receiver.accepted) < total and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None  # delivered everything and keeps waiting for more
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 143, err.decode()
        assert b"0 pending" in err and b"Traceback" not in err
    finally:
        receiver.stop()

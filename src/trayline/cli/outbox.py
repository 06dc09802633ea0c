"""``trayline outbox``: completed units on their way to the customer's own system.

``send`` delivers (on its own, as a service next to the line; or inside
``station run`` when ``TRAYLINE_OUTBOX_URL`` is set), ``status`` shows what
is waiting and why, ``retry`` requeues messages the receiver refused once the
cause is fixed. Delivery is at least once, in order per unit; see
docs/cm-and-customer.md for what the receiver must do with the headers.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import typer
from rich.table import Table

from trayline import settings
from trayline.cli.console import err, fail, out
from trayline.cli.options import EXIT_STORE, DbOption, open_db
from trayline.outbox.sender import Sender, SenderPolicy, start_in_background
from trayline.outbox.webhook import WebhookConfigError, webhook_config
from trayline.store.db import Store, StoreError
from trayline.store.outbox import list_messages, outbox_counts, requeue

app = typer.Typer(
    help="Deliver each completed unit to the customer's webhook (at least once, in order).\n\n"
    "Example: TRAYLINE_OUTBOX_URL=https://mes.example/hook trayline outbox send",
    no_args_is_help=True,
)
EXIT_LEFT = 1


@app.command("status")
def status_command(
    as_json: bool = typer.Option(False, "--json", help="Print counts and messages as JSON."),
    limit: int = typer.Option(20, "--limit", min=1, help="Show this many newest messages."),
    db: str | None = DbOption,
) -> None:
    """Counts of pending, sent and failed messages, and the newest ones with their last error.

    Example: trayline outbox status
    """
    with open_db(db) as store:
        counts = outbox_counts(store)
        messages = list_messages(store, limit=limit)
    if as_json:
        body = {
            "pending": counts.pending,
            "sent": counts.sent,
            "failed": counts.failed,
            "oldest_pending": counts.oldest_pending.isoformat() if counts.oldest_pending else None,
            "messages": [
                {
                    "id": m.id,
                    "serial_number": m.serial_number,
                    "kind": m.kind,
                    "sequence": m.sequence,
                    "state": m.state,
                    "attempts": m.attempts,
                    "last_error": m.last_error,
                    "created_at": m.created_at.isoformat(),
                    "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                }
                for m in messages
            ],
        }
        print(json.dumps(body, indent=2))
        return
    since = counts.oldest_pending
    oldest = f", oldest pending since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    out.print(f"{counts.pending} pending, {counts.sent} sent, {counts.failed} failed{oldest}")
    table = Table("id", "unit", "message", "state", "tries", "last error", box=None)
    for m in messages:
        table.add_row(
            str(m.id),
            m.serial_number,
            f"{m.kind} #{m.sequence}",
            m.state,
            str(m.attempts),
            (m.last_error or "")[:40],
        )
    out.print(table)


@app.command("retry")
def retry_command(
    message_id: int | None = typer.Option(None, "--id", help="Requeue this failed message."),
    all_failed: bool = typer.Option(False, "--all-failed", help="Requeue every failed message."),
    db: str | None = DbOption,
) -> None:
    """Requeue messages the receiver refused (after fixing the URL, secret or receiver).

    Example: trayline outbox retry --all-failed
    """
    if (message_id is None) == (not all_failed):
        fail("give --id N or --all-failed")
    with open_db(db) as store:
        count = requeue(store, message_id=message_id, all_failed=all_failed)
    if message_id is not None and count == 0:
        fail(f"message {message_id} is not a failed message (see trayline outbox status)", 1)
    out.print(f"{count} message(s) requeued; trayline outbox send delivers them")


class _Signals:
    """SIGINT/SIGTERM stop the sender after the request in flight; the exit code says which."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.received: int | None = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.handle)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = self.received or signum
        self.stop.set()


@app.command("send")
def send_command(
    once: bool = typer.Option(False, "--once", help="Try each due message once, then exit."),
    until_empty: bool = typer.Option(
        False, "--until-empty", help="Keep retrying until nothing is pending, then exit."
    ),
    url: str | None = typer.Option(
        None, "--url", help="Webhook URL (default $TRAYLINE_OUTBOX_URL)."
    ),
    secret_file: Path | None = typer.Option(
        None, "--secret-file", help="HMAC secret file, mode 0600 (default $TRAYLINE_OUTBOX_SECRET)."
    ),
    retry_min: float = typer.Option(1.0, "--retry-min", min=0.01, help="First retry wait (s)."),
    retry_max: float = typer.Option(300.0, "--retry-max", min=0.01, help="Longest wait (s)."),
    interval: float = typer.Option(1.0, "--interval", min=0.01, help="Poll when idle (s)."),
    quiet: bool = typer.Option(False, "--quiet", help="No line per delivery."),
    db: str | None = DbOption,
) -> None:
    """Deliver the outbox to the customer's webhook; runs until stopped unless --once/--until-empty.

    Exit 0 when nothing is left pending (or stopped), 1 when --once left messages
    pending or any are failed, 2 for a bad URL or secret, 4 for a store problem.

    Example: TRAYLINE_OUTBOX_SECRET=... trayline outbox send --url http://127.0.0.1:9000/units
    """
    try:
        config = webhook_config(url or settings.outbox_url(), settings.outbox_secret(), secret_file)
    except WebhookConfigError as exc:
        fail(str(exc))
    policy = SenderPolicy(retry_min=retry_min, retry_max=max(retry_max, retry_min), poll=interval)
    stop = threading.Event()
    signals = _Signals(stop)
    log = (lambda _line: None) if quiet else (lambda line: err.print(line, markup=False))
    with open_db(db) as store:
        sender = Sender(store, config, policy, log=log)
        try:
            if once:
                sender.run_pass()
            else:
                sender.run(stop, until_empty=until_empty)
            counts = outbox_counts(store)
        except StoreError as exc:
            fail(str(exc), EXIT_STORE)
        finally:
            sender.close()
    if signals.received is not None:
        err.print(f"stopped; {counts.pending} pending — run the same command again to continue")
        raise typer.Exit(128 + signals.received)
    out.print(f"{counts.pending} pending, {counts.sent} sent, {counts.failed} failed")
    if counts.failed or (once and counts.pending):
        raise typer.Exit(EXIT_LEFT)


@contextmanager
def delivering(store: Store) -> Iterator[None]:
    """Deliver completed units in a background thread while a station runs.

    Only when ``TRAYLINE_OUTBOX_URL`` is set (secret: ``TRAYLINE_OUTBOX_SECRET``);
    otherwise units only queue, for a separate ``trayline outbox send``. A bad
    URL or a missing secret stops the station before it starts (exit 2).
    """
    url = settings.outbox_url()
    if url is None:
        yield
        return
    try:
        config = webhook_config(url, settings.outbox_secret(), None)
    except WebhookConfigError as exc:
        fail(str(exc))
    thread, stop = start_in_background(store, config)
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)

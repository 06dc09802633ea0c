"""Benchmark: server time of the web pages on a large synthetic line, SQLite and PostgreSQL.

Synthetic data, made in the database itself (``INSERT … SELECT`` over a number
series): N units spread at ``--per-day`` units a day up to now, each with
``--events`` events, two parts (a unique battery serial and an enclosure lot
shared by 1,000 units), one test attempt with two measurements (vbat against
3.6–4.3 V, rssi), 5 % failed with a reason, the ready ones packed 500 to a
carton. On PostgreSQL the load is done as a bulk load: secondary indexes dropped
and built again after, foreign-key triggers skipped, then ``VACUUM ANALYZE``
(1,000,000 units / 20,000,000 events in about 2.5 minutes on a shared 2-core
machine). Then, in-process (the ASGI
app, no network), each page is requested ``--requests`` times with varying
inputs and the server time is measured:

* dashboard ``/`` (last 7 days: yield by hour → day, units per hour chart,
  Pareto, histograms with Cpk, slot health, jobs) — twice: as it comes (a chart
  whose data is unchanged since the last request is not drawn again), and with
  every chart drawn anew, which is what a request costs when a unit has
  finished since the previous one;
* unit page ``/units/{serial}`` and ``GET /api/units/{device_id}``;
* search ``/search?q=`` by device ID, ICCID, IMEI and part serial, and
  ``GET /api/search``;
* ``GET /api/units?status=failed`` and ``?batch=`` (a part lot or a shipment's carton; one
  page each), and ``GET /api/yield`` by shift and by batch.

Printed: the machine's load average, p50 / p95 / max per page, the p95 of the
same page on a 1,000-unit line measured in the same run (the baseline: a ratio
near 1 means the page's cost does not grow with the line), the median CPU time
this process spent per request (the app and SQLite; it moves far less with the
machine's load than the server time does), and for the slowest
page the SQL it ran with the database's plan (``EXPLAIN QUERY PLAN`` on
SQLite, ``EXPLAIN ANALYZE`` on PostgreSQL) for its three slowest statements.
The issue's scale is 1,000,000 units / 20,000,000 events on PostgreSQL and
100,000 / 2,000,000 on SQLite; the defaults are smaller so a run fits a shared
2-core machine. ``--reuse`` measures the lines an earlier run left (same sizes)
instead of making them again; ``--drop`` removes them at the end:

    .venv/bin/python benchmarks/web.py                                   # defaults
    .venv/bin/python benchmarks/web.py --backend pg --units 1000000 --events 20
    .venv/bin/python benchmarks/web.py --backend pg --units 1000000 --events 20 --reuse --drop
    .venv/bin/python benchmarks/web.py --backend sqlite --units 100000 --events 20
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

from trayline.store.db import Store, open_store
from trayline.store.users import add_token, add_user
from trayline.web.access import token_digest
from trayline.web.app import create_app
from trayline.web.dashboard import forget_charts

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_DB = "trayline_bench_web"
BASE_UNITS = 1000
"""The baseline: the same pages on a line of 1,000 units, measured in the same run."""
TOKEN = "tl_benchmark-token"
VBAT = "3.6 + ((i % 10007) * 7919 % 1000) / 1428.0"
"""A spread of battery voltages inside 3.6–4.3 V (kept in 32-bit integers for PostgreSQL)."""
RSSI = "-100 + ((i % 10007) * 104729 % 400) / 10.0"
KINDS = (
    "scanned",
    "part_linked",
    "part_linked",
    "parts_linked",
    "identified",
    "test_flashed",
    "tested",
    "production_flashed",
    "verified",
    "setup_done",
    "ready",
)


def _series(backend: str, n: int, name: str = "i") -> str:
    """A FROM clause giving integers 1..n as column ``name`` on each backend."""
    if backend == "postgresql":
        return f"generate_series(1, {n}) AS s({name})"
    return (
        f"(WITH RECURSIVE s({name}) AS (SELECT 1 UNION ALL SELECT {name} + 1 FROM s "
        f"WHERE {name} < {n}) SELECT {name} FROM s) AS s"
    )


def _exprs(backend: str, seconds: int) -> dict[str, str]:
    """Per-backend SQL for the unit columns derived from ``i``."""
    if backend == "postgresql":
        offset = f"interval '1 second' * (i::float8 * {seconds} / :n)"
        at = f"(now() - interval '{seconds} seconds' + {offset})"
        return {
            "serial": "'P028BEN' || lpad(i::text, 8, '0')",
            "device": "'e00fce68' || lpad(to_hex(i), 16, '0')",
            "iccid": "'89014103' || lpad(i::text, 11, '0')",
            "imei": "'35' || lpad(i::text, 13, '0')",
            "at": at,
            "plus": "{at} + interval '{s} seconds'",
            "battery": "'BAT-' || lpad(i::text, 8, '0')",
            "lot": "'LOT-' || (i / 1000)::text",
            "carton": "'carton-' || (i / 500)::text",
            "json": "'{}'::json",
            "slot": "chr(65 + i % 4)",
        }
    at = (
        f"strftime('%Y-%m-%d %H:%M:%S', 'now', '-{seconds} seconds', "
        f"'+' || (i * {seconds} / :n) || ' seconds') || '.000000'"
    )
    return {
        "serial": "'P028BEN' || printf('%08d', i)",
        "device": "'e00fce68' || printf('%016x', i)",
        "iccid": "'89014103' || printf('%011d', i)",
        "imei": "'35' || printf('%013d', i)",
        "at": at,
        "plus": "strftime('%Y-%m-%d %H:%M:%S', {at}, '+{s} seconds') || '.000000'",
        "slot": "char(65 + i % 4)",
        "battery": "'BAT-' || printf('%08d', i)",
        "lot": "'LOT-' || (i / 1000)",
        "carton": "'carton-' || (i / 500)",
        "json": "'{}'",
    }


TABLES = ("units", "parts", "unit_attempts", "unit_measurements", "events")
"""The tables the synthetic line fills."""


def _statements(backend: str, units: int, events: int, per_day: int) -> list[str]:
    """The ``INSERT … SELECT`` statements that make the line (parameter ``n`` = units)."""
    seconds = max(3600, int(units / per_day * 86400))
    x = _exprs(backend, seconds)
    at, series = x["at"], _series(backend, units)
    status = "CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'ready' END"
    reason = (
        "CASE WHEN i % 40 = 0 THEN 'power: vbat 3.1 V below 3.6 V' "
        "WHEN i % 20 = 0 THEN 'test firmware did not answer within 5 s' END"
    )
    plus = x["plus"].format(at=at, s=300)
    statements = [
        f"""INSERT INTO units (id, serial_number, device_id, sku, iccid, imei, status, reason,
            station, slot, firmware, batch, created_at, updated_at)
            SELECT i, {x["serial"]}, {x["device"]}, 'BRN404', {x["iccid"]}, {x["imei"]}, {status},
            {reason}, 'st' || (i % 4), {x["slot"]}, {x["json"]},
            CASE WHEN i % 20 = 0 THEN NULL ELSE {x["carton"]} END, {at}, {plus}
            FROM {series}""",
        f"""INSERT INTO parts (unit_id, kind, part_serial, unique_serial, lot, linked_at)
            SELECT i, 'battery', {x["battery"]}, {x["battery"]}, NULL, {at} FROM {series}""",
        f"""INSERT INTO parts (unit_id, kind, part_serial, unique_serial, lot, linked_at)
            SELECT i, 'enclosure', {x["lot"]}, NULL, {x["lot"]}, {at} FROM {series}""",
        f"""INSERT INTO unit_attempts (id, unit_id, number, station, slot, outcome, reason,
            started_at, finished_at)
            SELECT i, i, 1, 'st' || (i % 4), {x["slot"]},
            CASE WHEN i % 40 = 0 THEN 'fail' ELSE 'pass' END, NULL, {at},
            {x["plus"].format(at=at, s=120)} FROM {series}""",
        f"""INSERT INTO unit_measurements (attempt_id, step, name, value, unit, low, high,
            verdict)
            SELECT i, 'power', 'vbat', {_num(backend, VBAT)},
            'V', 3.6, 4.3, CASE WHEN i % 40 = 0 THEN 'fail' ELSE 'pass' END FROM {series}""",
        f"""INSERT INTO unit_measurements (attempt_id, step, name, value, unit, low, high,
            verdict)
            SELECT i, 'radio', 'rssi', {_num(backend, RSSI)},
            'dBm', -105, NULL, 'pass' FROM {series}""",
    ]
    if backend == "postgresql" and events:
        # One statement for every event, in the same order as the loop below (event j of
        # every unit, then event j + 1): a unit's events are spread over the table.
        kinds = ", ".join(f"'{k}'" for k in KINDS)
        statements.append(
            f"""INSERT INTO events (at, unit_id, device_id, kind, source, message, data)
            SELECT {at} + j * interval '1 second', i, {x["device"]},
            (ARRAY[{kinds}])[j % {len(KINDS)} + 1], 'st' || (i % 4),
            'synthetic event ' || j, {x["json"]}
            FROM generate_series(0, {events - 1}) AS e(j) CROSS JOIN {series}"""
        )
        return statements
    for j in range(events):
        kind = KINDS[j % len(KINDS)]
        statements.append(
            f"""INSERT INTO events (at, unit_id, device_id, kind, source, message, data)
            SELECT {x["plus"].format(at=at, s=j)}, i, {x["device"]}, '{kind}', 'st' || (i % 4),
            'synthetic event {j}', {x["json"]} FROM {series}"""
        )
    return statements


def generate(store: Store, units: int, events: int, per_day: int) -> float:
    """Fill an empty store; seconds taken."""
    backend = store.engine.dialect.name
    statements = _statements(backend, units, events, per_day)
    began = time.perf_counter()
    if backend == "postgresql":
        _generate_pg(store, statements, units)
        return time.perf_counter() - began
    with store.engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql), {"n": units})
    with store.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - began


def _generate_pg(store: Store, statements: list[str], units: int) -> None:
    """PostgreSQL bulk load, as one would load a big table: the secondary indexes are dropped
    and built again after the rows are in (one sort each instead of 20 million inserts into
    each), the foreign-key triggers are skipped (``session_replication_role = replica``; the
    rows are consistent by construction), and at the end ``VACUUM ANALYZE`` does what
    autovacuum would do on a real line (statistics and the visibility map)."""
    secondary = text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = ANY(:tables) AND indexname NOT IN (SELECT conname FROM pg_constraint)"
    )
    with store.engine.begin() as conn:
        for setting in (
            "synchronous_commit = off",
            "session_replication_role = replica",
            "maintenance_work_mem = '512MB'",
            "work_mem = '256MB'",
        ):
            conn.execute(text(f"SET LOCAL {setting}"))
        indexes = conn.execute(secondary, {"tables": list(TABLES)}).all()
        for name, _definition in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        for sql in statements:
            conn.execute(text(sql), {"n": units})
        for _name, definition in indexes:
            conn.execute(text(definition))
        conn.execute(text("SELECT setval('units_id_seq', :n)"), {"n": units})
        conn.execute(text("SELECT setval('unit_attempts_id_seq', :n)"), {"n": units})
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in TABLES:
            conn.execute(text(f"VACUUM ANALYZE {table}"))


def _num(backend: str, expression: str) -> str:
    if backend == "postgresql":
        return f"to_json({expression})"
    return f"CAST(({expression}) AS TEXT)"  # the JSON column holds text on SQLite


@contextmanager
def recording(engine: Engine) -> Iterator[list[tuple[float, str, Any]]]:
    """Every statement run on ``engine`` in the block, with its time."""
    seen: list[tuple[float, str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((time.perf_counter() - conn.info.pop("t0"), statement, params))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(store: Store, statement: str, params: Any, settings: list[tuple[str, Any]]) -> str:
    """The database's plan of ``statement``; on PostgreSQL run (``EXPLAIN ANALYZE``) in a
    transaction that first applies the ``set_config`` calls the page made before its
    statements (the dashboard turns JIT and parallel workers off for its reads)."""
    backend = store.engine.dialect.name
    prefix = "EXPLAIN ANALYZE " if backend == "postgresql" else "EXPLAIN QUERY PLAN "
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if backend == "postgresql":
            for setting, values in settings:
                cursor.execute(setting, values)
        cursor.execute(prefix + statement, params)
        rows = cursor.fetchall()
        cursor.close()
        raw.rollback()
    if backend == "postgresql":
        return "\n".join(r[0] for r in rows)
    return "\n".join(f"{'  ' * (r[1] and 1)}{r[-1]}" for r in rows)


def _pages(units: int, rng: random.Random) -> dict[str, Any]:
    def ident(kind: str) -> str:
        i = rng.randint(1, units)
        return {
            "serial": f"P028BEN{i:08d}",
            "device": f"e00fce68{i:016x}",
            "iccid": f"89014103{i:011d}",
            "imei": f"35{i:013d}",
            "part": f"BAT-{i:08d}",
        }[kind]

    kinds = ("device", "iccid", "imei", "part")
    return {
        "dashboard /": lambda: "/",
        DRAWN_ANEW: lambda: "/",
        "unit page /units/{serial}": lambda: f"/units/{ident('serial')}",
        "search /search?q= (id or part)": lambda: f"/search?q={ident(rng.choice(kinds))}",
        "search by lot (genealogy)": lambda: f"/search?q=LOT-{rng.randint(0, units // 1000)}",
        "GET /api/units/{device_id}": lambda: f"/api/units/{ident('device')}",
        "GET /api/search?q=": lambda: f"/api/search?q={ident(rng.choice(kinds))}",
        "GET /api/units?status=failed": lambda: "/api/units?status=failed&limit=100",
        "GET /api/units?batch= (lot or carton)": lambda: (
            "/api/units?limit=100&batch="
            + rng.choice(("LOT-", "carton-"))
            + str(rng.randint(0, units // 1000))
        ),
        "GET /api/yield?by=shift": lambda: "/api/yield?by=shift",
        "GET /api/yield?by=batch": lambda: "/api/yield?by=batch",
    }


DRAWN_ANEW = "dashboard / (charts drawn anew)"
"""The dashboard with its kept chart drawings dropped before each request: what a request
costs when a unit has finished since the last one (each chart's data changed)."""


Samples = dict[str, list[float]]
"""Seconds per request, by page."""


def measure(store: Store, units: int, requests: int) -> tuple[Samples, Samples]:
    """Server time per request by page, and this process's CPU time per request (every
    thread: the app's Python and SQLite's work, not PostgreSQL's server processes) —
    the CPU figure hardly moves with the machine's load, the server time does."""
    app = create_app(store, secret="b" * 48)
    headers = {"authorization": f"Bearer {TOKEN}"}
    rng = random.Random(7)
    times: Samples = {}
    cpu: Samples = {}
    with TestClient(app) as client:
        for name, path in _pages(units, rng).items():
            client.get(path(), headers=headers, follow_redirects=False)  # warm the cache
            times[name], cpu[name] = [], []
            for _ in range(requests):
                target = path()
                if name == DRAWN_ANEW:
                    forget_charts()
                began, used = time.perf_counter(), time.process_time()
                reply = client.get(target, headers=headers, follow_redirects=False)
                times[name].append(time.perf_counter() - began)
                cpu[name].append(time.process_time() - used)
                if reply.status_code not in (200, 303):
                    sys.exit(f"{target}: {reply.status_code} {reply.text[:200]}")
    return times, cpu


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(store: Store, measured: tuple[Samples, Samples], base: Samples, units: int) -> None:
    times, cpu = measured
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine load average (1, 5, 15 min) after measuring: {load}; {os.cpu_count()} CPUs")
    print(
        f"{'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'base p95':>9} {'ratio':>6}"
        f" {'CPU p50':>8}"
    )
    for name, samples in times.items():
        ratio = _p95(samples) / _p95(base[name])
        print(
            f"{name:<34} {statistics.median(samples) * 1000:8.1f} {_p95(samples) * 1000:8.1f} "
            f"{max(samples) * 1000:8.1f} {_p95(base[name]) * 1000:9.1f} {ratio:6.2f}"
            f" {statistics.median(cpu[name]) * 1000:8.1f}"
        )
    slowest = max(times, key=lambda k: _p95(times[k]))
    print(f"\nslowest page: {slowest}; its three slowest statements and their plans:")
    app = create_app(store, secret="b" * 48)
    path = _pages(units, random.Random(7))[slowest]()
    forget_charts()
    with TestClient(app) as client, recording(store.engine) as seen:
        client.get(path, headers={"authorization": f"Bearer {TOKEN}"}, follow_redirects=False)
    settings = list({st: p for _, st, p in seen if "set_config(" in st}.items())
    for took, statement, params in sorted(seen, key=lambda s: -s[0])[:3]:
        print(f"\n-- {took * 1000:.1f} ms\n{statement.strip()}\n-- plan:")
        print(explain(store, statement, params, settings))


def _filled(backend: str, workdir: Path, pg_admin: str, name: str, units: int, args: Any) -> Store:
    days = max(units / args.per_day, 1 / 24)
    made = f"{units:,} units, {units * args.events:,} events, {days:.1f} days"
    if args.reuse:
        store = _existing(backend, workdir, pg_admin, name)
        if store is not None and _holds(store, units, args.events):
            print(f"{name}: {made}, kept from an earlier run (--reuse)")
            return store
        if store is not None:
            store.dispose()
    store = _store(backend, workdir, pg_admin, name)
    add_user(store, "bench", "engineer", "$argon2id$not-used")
    add_token(store, "bench", token_digest(TOKEN))
    took = generate(store, units, args.events, args.per_day)
    print(f"{name}: {made}, made in {took:.0f} s")
    return store


def _holds(store: Store, units: int, events: int) -> bool:
    """Whether ``store`` is a line this script made with these sizes."""
    with store.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM units")).scalar_one()
        last = conn.execute(text("SELECT max(id) FROM events")).scalar_one()
    return bool(count == units and (last or 0) == units * events)


def _pg_url(pg_admin: str, name: str) -> str:
    return make_url(pg_admin).set(database=name).render_as_string(hide_password=False)


def _existing(backend: str, workdir: Path, pg_admin: str, name: str) -> Store | None:
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        return open_store(f"sqlite:///{path}") if path.exists() else None
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        there = found.first() is not None
    admin.dispose()
    return open_store(_pg_url(pg_admin, name)) if there else None


def _store(backend: str, workdir: Path, pg_admin: str, name: str) -> Store:
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        path.unlink(missing_ok=True)
        return open_store(f"sqlite:///{path}")
    _drop_pg(pg_admin, name)
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return open_store(_pg_url(pg_admin, name))


def _drop_pg(pg_admin: str, name: str) -> None:
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _drop(backend: str, workdir: Path, pg_admin: str) -> None:
    for name in (f"{BENCH_DB}_base", BENCH_DB):
        if backend == "sqlite":
            for suffix in (".db", ".db-wal", ".db-shm"):
                (workdir / f"{name}{suffix}").unlink(missing_ok=True)
        else:
            _drop_pg(pg_admin, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument(
        "--units", type=int, default=None, help="default 100,000 (pg) / 50,000 (sqlite)"
    )
    parser.add_argument("--events", type=int, default=20, help="events per unit")
    parser.add_argument("--per-day", type=int, default=2740, help="units built per day")
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the lines an earlier run left (same --units and --events) instead of "
        "making them again",
    )
    parser.add_argument(
        "--drop", action="store_true", help="drop the benchmark databases (or files) at the end"
    )
    args = parser.parse_args()
    backends = ("sqlite", "pg") if args.backend == "both" else (args.backend,)
    for backend in backends:
        units = args.units or (100_000 if backend == "pg" else 50_000)
        print(f"\n=== {backend} ===")
        base = _filled(
            backend, args.workdir, args.pg_admin_url, f"{BENCH_DB}_base", BASE_UNITS, args
        )
        base_times, _ = measure(base, BASE_UNITS, args.requests)
        base.dispose()
        store = _filled(backend, args.workdir, args.pg_admin_url, BENCH_DB, units, args)
        report(store, measure(store, units, args.requests), base_times, units)
        store.dispose()
        if args.drop:
            _drop(backend, args.workdir, args.pg_admin_url)


if __name__ == "__main__":
    main()

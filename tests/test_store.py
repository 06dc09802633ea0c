"""The store on both backends: migrations, pragmas, round trips and constraints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from trayline.store.db import Store, StoreError, current_revision, head_revision, open_store
from trayline.store.models import CloudCall, Event, Part, ProvisioningDevice, ProvisioningJob, Unit


def test_open_store_migrates_to_head(store: Store) -> None:
    assert current_revision(store.engine) == head_revision()
    # a second open is a no-op
    again = open_store(store.url)
    assert current_revision(again.engine) == head_revision()
    again.dispose()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    s = open_store(sqlite_url)
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    s.dispose()


def test_unit_parts_events_round_trip(store: Store) -> None:
    with store.session() as session:
        unit = Unit(
            serial_number="P028AB1234567XY", device_id="0123456789abcdef01234567", sku="BRN404"
        )
        unit.parts.append(
            Part(kind="enclosure", part_number="ENC-1", part_serial="E0001", lot="L7")
        )
        session.add(unit)
        session.flush()
        session.add(Event(unit_id=unit.id, kind="unit.created", data={"sku": "BRN404"}))
    with store.session() as session:
        got = session.scalars(select(Unit)).one()
        assert got.parts[0].part_serial == "E0001"
        assert got.created_at.tzinfo is not None
        event = session.scalars(select(Event)).one()
        assert event.data == {"sku": "BRN404"}
        assert event.at <= datetime.now(UTC)


def test_serial_number_is_unique(store: Store) -> None:
    with store.session() as session:
        session.add(Unit(serial_number="P028AB1234567XY"))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Unit(serial_number="P028AB1234567XY"))


def test_foreign_keys_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Part(unit_id=999, kind="pcb"))


def test_journal_rows_and_audit(store: Store) -> None:
    with store.session() as session:
        job = ProvisioningJob(key="k" * 64, product="1234", input_path="ids.txt")
        job.devices.append(
            ProvisioningDevice(
                line_no=1, identifier="0123456789abcdef01234567", id_kind="device_id"
            )
        )
        session.add(job)
        session.flush()
        session.add(
            CloudCall(
                method="POST",
                path_template="/v1/products/{product}/devices",
                status=200,
                duration_ms=12.5,
                job_id=job.id,
            )
        )
    with store.session() as session:
        job = session.scalars(select(ProvisioningJob)).one()
        assert job.devices[0].imported == "pending"
        assert session.scalars(select(CloudCall)).one().status == 200


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("not a url")


def test_sqlite_migration_is_all_or_nothing(sqlite_url: str) -> None:
    """A migration that fails half-way leaves no tables behind (a killed process must too)."""
    from sqlalchemy import inspect

    from trayline.store.db import make_engine

    engine = make_engine(sqlite_url)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE provisioning_jobs (id INTEGER)")
        raise RuntimeError("killed")
    assert "provisioning_jobs" not in inspect(engine).get_table_names()
    engine.dispose()
    store = open_store(sqlite_url)
    assert current_revision(store.engine) == head_revision()
    store.dispose()


def test_db_status_on_unreachable_database_is_one_line() -> None:
    from typer.testing import CliRunner

    from trayline.cli.app import app

    result = CliRunner().invoke(
        app,
        ["db", "status", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"],
    )
    assert result.exit_code == 4
    assert "cannot open database" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)

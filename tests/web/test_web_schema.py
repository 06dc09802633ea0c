"""schemathesis against the app's own OpenAPI schema: generated requests never get a 500, and
every answer matches what the schema promises. Bounded: a few examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from webkit import add_users, build_app

from station.linekit import World
from trayline.store.db import Store, open_store
from trayline.store.users import add_token
from trayline.web.access import token_digest

TOKEN = "tl_schemathesis-engineer"


@pytest.fixture(scope="module")
def web_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    folder = tmp_path_factory.mktemp("schema")
    store: Store = open_store(f"sqlite:///{folder / 'trayline.db'}")
    add_users(store)
    add_token(store, "engineer", token_digest(TOKEN))
    world = World()
    world.add(1)
    app = build_app(store, folder, world)
    yield app
    store.dispose()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_api_keeps_its_schema_and_never_fails(web_app: object) -> None:
    """Each operation with a dozen generated requests (schemathesis's pytest plugin does not
    load under this pytest, so the operations are walked here with hypothesis directly)."""
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", web_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"authorization": f"Bearer {TOKEN}"})
            case.validate_response(response, checks=CHECKS)

        run()


def test_the_schema_lists_the_api(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    app = build_app(store, tmp_path)
    paths = app.openapi()["paths"]
    for path in ("/api/units/{ident}", "/api/units", "/api/yield", "/api/search"):
        assert path in paths
    assert not any(p.startswith(("/admin", "/login", "/station/")) for p in paths)
    store.dispose()

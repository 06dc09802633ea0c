"""The local cloud refuses what the real one would, with nothing stored (issue 7 §5).

Each test sends one bad request the way an adversary or a buggy script would:
invalid UTF-8, a lone surrogate sent as a JSON escape, a list where text belongs,
a body over the limit, a duplicate slug, absurd fault settings, a huge factory
order. Each must be a 4xx in the spec's error shape, leave the records as they
were, and leave every listing working.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from trayline.particle.emulator import EmulatorApp, EmulatorConfig, EmulatorState, create_app
from trayline.particle.emulator.records import Device

PRODUCT = 4242
SLUG = "line-a"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def app() -> EmulatorApp:
    app = create_app(EmulatorConfig(seed=11, max_body_bytes=4096, max_devices_per_request=5000))
    app.cloud.add_product(PRODUCT, SLUG, platform_id=13)
    app.cloud.add_token("me@example.com", token="t" * 40)
    return app


@pytest.fixture
async def http(app: EmulatorApp) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    headers = {"Authorization": "Bearer " + "t" * 40}
    async with httpx2.AsyncClient(
        transport=transport, base_url="http://cloud", headers=headers
    ) as client:
        yield client


def _device(app: EmulatorApp) -> Device:
    (device,) = app.cloud.make_devices("BRN404", 1, product_id=PRODUCT)
    return device


async def _assert_refused(r: httpx2.Response, status: int = 400, text: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["ok"] is False and isinstance(body["error"], str), body
    assert text in body["error"]


async def _listings_work(http: httpx2.AsyncClient) -> dict[str, object]:
    r = await http.get(f"/v1/products/{PRODUCT}/devices")
    assert r.status_code == 200, r.text
    state = await http.get("/_emulator/state")
    assert state.status_code == 200, state.text
    result: dict[str, object] = state.json()
    return result


# ------------------------------------------------------------------------- text
@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "x\\ud800"}',  # the lone surrogate of issue 7, as a JSON escape
        b'{"name": "ok", "notes": ["\\udfff"]}',
        b'{"name": "ok", "x\\ud83d": 1}',  # in a key, even an unknown one
        b'{"name": "\xff\xfe"}',  # invalid UTF-8 bytes
    ],
)
async def test_bad_text_in_a_json_body_is_400_and_nothing_stored(
    app: EmulatorApp, http: httpx2.AsyncClient, raw: bytes
) -> None:
    device = _device(app)
    before = device.to_admin()
    r = await http.put(f"/v1/products/{PRODUCT}/devices/{device.id}", content=raw, headers=JSON)
    await _assert_refused(r)
    assert device.to_admin() == before
    await _listings_work(http)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"name=%FF", FORM),  # percent escape of an invalid byte
        (b"name=%ED%A0%80", FORM),  # a surrogate, UTF-8 encoded (CESU-8)
        (b"name=\xc3", FORM),  # raw, truncated UTF-8
    ],
)
async def test_bad_text_in_a_form_body_is_400(
    app: EmulatorApp, http: httpx2.AsyncClient, content: bytes, headers: dict[str, str]
) -> None:
    r = await http.post(f"/v1/products/{PRODUCT}/groups", content=content, headers=headers)
    await _assert_refused(r, text="UTF-8")
    assert app.cloud.groups[PRODUCT] == {}


async def test_bad_utf8_in_an_uploaded_file_imports_nothing(
    app: EmulatorApp, http: httpx2.AsyncClient
) -> None:
    (device,) = app.cloud.make_devices("BRN404", 1)
    content = device.id.encode() + b"\n\xff\xfe\n"
    r = await http.post(
        f"/v1/products/{PRODUCT}/devices", files={"file": ("devices.txt", content, "text/plain")}
    )
    await _assert_refused(r, text="UTF-8")
    assert device.product_id is None


async def test_bad_utf8_in_the_query_or_path_is_400(http: httpx2.AsyncClient) -> None:
    r = await http.get(f"/v1/products/{PRODUCT}/devices?deviceName=%FF")
    await _assert_refused(r, text="query")
    r = await http.get(f"/v1/products/{PRODUCT}/devices?deviceName=%ED%A0%80")
    await _assert_refused(r, text="query")
    r = await http.get("/v1/products/%FF%FE/devices")
    await _assert_refused(r, text="path")
    await _listings_work(http)


# ------------------------------------------------------------------------- types
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ["P028", "X"]}, "name"),  # was stored as "['P028', 'X']"
        ({"name": {"a": 1}}, "name"),
        ({"notes": 12}, "notes"),
        ({"development": "maybe"}, "development"),
        ({"development": [True]}, "development"),
        ({"desired_firmware_version": True}, "desired_firmware_version"),
        ({"desired_firmware_version": 1.5}, "desired_firmware_version"),
        ({"desired_firmware_version": 10**40}, "desired_firmware_version"),
        ({"groups": {"add": "x"}}, "groups"),
        ({"groups": [1, 2]}, "groups"),
        ({"name": "good", "groups": ["NOT VALID"]}, "group name"),
    ],
)
async def test_wrong_json_types_on_a_device_put_change_nothing(
    app: EmulatorApp, http: httpx2.AsyncClient, body: dict[str, object], field: str
) -> None:
    device = _device(app)
    before = device.to_admin()
    r = await http.put(f"/v1/products/{PRODUCT}/devices/{device.id}", json=body)
    await _assert_refused(r, text=field)
    assert device.to_admin() == before
    assert app.cloud.groups[PRODUCT] == {}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/v1/products/{PRODUCT}/devices", {"ids": [{"id": "x"}]}),
        ("POST", f"/v1/products/{PRODUCT}/devices", {"id": 123456}),
        ("POST", f"/v1/products/{PRODUCT}/devices", {"id": "x", "claim_user": ["a"]}),
        ("POST", f"/v1/products/{PRODUCT}/groups", {"name": 5}),
        ("POST", f"/v1/products/{PRODUCT}/groups", {"name": "g", "color": ["#fff"]}),
        ("PUT", f"/v1/products/{PRODUCT}/devices", {"action": ["groups"]}),
        ("PUT", f"/v1/products/{PRODUCT}/devices", {"action": "groups", "metadata": "{no"}),
        ("PUT", f"/v1/products/{PRODUCT}/devices", {"action": "groups", "metadata": [1]}),
        ("POST", f"/v1/products/{PRODUCT}/sims", {"sims": [8901]}),
        ("POST", "/v1/devices", {"id": 123}),
        ("POST", "/v1/devices", {"id": "abc", "request_transfer": "perhaps"}),
        ("POST", "/_emulator/tokens", {"username": ["a"]}),
        ("POST", "/_emulator/tokens", {"username": "a", "scopes": "devices:list x", "token": 7}),
    ],
)
async def test_wrong_json_types_elsewhere_are_400(
    app: EmulatorApp, http: httpx2.AsyncClient, method: str, path: str, body: dict[str, object]
) -> None:
    before = app.cloud.snapshot(), dict(app.cloud.tokens)
    r = await http.request(method, path, json=body)
    await _assert_refused(r)
    assert (app.cloud.snapshot(), dict(app.cloud.tokens)) == before


async def test_nan_infinity_and_deep_nesting_in_json_are_400(http: httpx2.AsyncClient) -> None:
    url = f"/v1/products/{PRODUCT}/groups"
    for raw in (b'{"name": NaN}', b'{"name": Infinity}', b"[" * 1500 + b"]" * 1500):
        r = await http.post(url, content=raw, headers=JSON)
        await _assert_refused(r)
    r = await http.post(url, content=b"1" * 3000, headers=JSON)  # an int past Python's limit
    await _assert_refused(r)


# ------------------------------------------------------------------------- size
async def test_a_body_over_the_limit_is_413_with_or_without_a_length(
    app: EmulatorApp, http: httpx2.AsyncClient
) -> None:
    big = json.dumps({"id": "x" * 5000}).encode()  # the limit here is 4096
    r = await http.post(f"/v1/products/{PRODUCT}/devices", content=big, headers=JSON)
    await _assert_refused(r, 413, "4096 bytes")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 1000

    r = await http.post(f"/v1/products/{PRODUCT}/devices", content=chunks(), headers=JSON)
    await _assert_refused(r, 413)
    r = await http.post("/_emulator/devices", content=big, headers=JSON)
    await _assert_refused(r, 413)
    assert app.cloud.devices == {}
    state = await _listings_work(http)
    assert state["counters"]["by_status"]["413"] == 2  # type: ignore[index]


async def test_the_default_limit_is_four_mebibytes() -> None:
    assert EmulatorConfig().max_body_bytes == 4 * 1024 * 1024


# ------------------------------------------------------------------------- admin surface
async def test_duplicate_and_bad_product_slugs_are_refused(
    app: EmulatorApp, http: httpx2.AsyncClient
) -> None:
    r = await http.post("/_emulator/products", json={"id": 77, "slug": SLUG})
    await _assert_refused(r, 409, "already belongs to product 4242")
    for body in (
        {"id": 78, "slug": "123"},  # all digits reads as an ID in a path
        {"id": 78, "slug": "Has Space"},
        {"id": 78, "slug": ["x"]},
        {"id": 0},
        {"id": 1e308},
        {"id": "seven"},
        {"id": 78, "platform_id": -1},
        {"id": 78, "device_limit": -5},
    ):
        r = await http.post("/_emulator/products", json=body)
        await _assert_refused(r)
    assert set(app.cloud.products) == {PRODUCT}
    assert app.cloud.find_product(SLUG) is app.cloud.products[PRODUCT]
    r = await http.post("/_emulator/products", json={"id": PRODUCT, "slug": SLUG, "name": "A2"})
    assert r.status_code == 201  # the same product again replaces it, as before


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": 1e308},
        {"latency_ms": -1},
        {"latency_ms": "NaN"},
        {"jitter_ms": 60_001},
        {"error_rate": 1.5},
        {"drop_rate": True},
        {"drop_rate": [0.1]},
        {"rate_limit": "1/999999999"},
        {"rate_limit": 5},
        {"rate_limit": "abc"},
        {"latency_ms": 10, "error_rate": 2},  # one bad setting: none is applied
    ],
)
async def test_absurd_fault_settings_are_400_and_change_nothing(
    app: EmulatorApp, http: httpx2.AsyncClient, body: dict[str, object]
) -> None:
    before = app.faults_view()
    r = await http.post("/_emulator/faults", json=body)
    await _assert_refused(r)
    assert app.faults_view() == before
    r = await http.post("/_emulator/faults", content=b'{"latency_ms": NaN}', headers=JSON)
    await _assert_refused(r)


async def test_fault_maxima_are_accepted(app: EmulatorApp, http: httpx2.AsyncClient) -> None:
    r = await http.post(
        "/_emulator/faults",
        data={"latency_ms": "60000", "error_rate": "1", "rate_limit": "1000000000/86400"},
    )
    assert r.status_code == 200
    assert r.json()["latency_ms"] == 60000 and r.json()["rate_limit"] == "1000000000/86400"


@pytest.mark.parametrize("count", [200_000, 5001, 0, -3, "many", 2.5, True])
async def test_absurd_factory_orders_are_400_and_make_nothing(
    app: EmulatorApp, http: httpx2.AsyncClient, count: object
) -> None:
    r = await http.post("/_emulator/devices", json={"sku": "BRN404", "count": count})
    await _assert_refused(r)
    assert app.cloud.devices == {} and app.cloud.sims == {}


async def test_bulk_creation_lets_other_requests_through(
    app: EmulatorApp, http: httpx2.AsyncClient
) -> None:
    """A 5000-device order yields to the event loop: a GET sent after it finishes first."""
    order = asyncio.create_task(
        http.post("/_emulator/devices", json={"sku": "BRN404", "count": 5000})
    )
    await asyncio.sleep(0)  # the order starts and reaches its first yield
    r = await http.get("/v1/user")
    assert r.status_code == 200
    assert not order.done()  # the user lookup did not wait for the order
    assert (await order).status_code == 201
    assert len(app.cloud.devices) == 5000


# ------------------------------------------------------------------------- state file
def test_a_state_file_with_bad_records_loads_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    good = create_app(EmulatorConfig(seed=4))
    good.cloud.add_product(PRODUCT, SLUG, platform_id=13)
    devices = good.cloud.make_devices("BRN404", 3, product_id=PRODUCT)
    good.cloud.add_token("me@x", token="u" * 40)
    good.cloud.save(path)
    data = json.loads(path.read_text())
    data["devices"][0]["name"] = "x\ud800"  # what an older emulator stored
    data["devices"][1]["groups"] = "['a', 'b']"
    data["devices"].append("not a record")
    data["products"].append({"id": 9, "slug": SLUG, "platform_id": 13, "name": "dup"})
    path.write_text(json.dumps(data))  # ensure_ascii: the surrogate is a \ud800 escape

    loaded = EmulatorState.load(path)
    assert list(loaded.devices) == [devices[2].id]
    assert set(loaded.products) == {PRODUCT}
    problems = "\n".join(loaded.load_problems)
    assert "devices[0]: name" in problems and "devices[1]: groups" in problems
    assert "devices[3]: not an object" in problems and "products[1]" in problems

    async def list_devices() -> httpx2.Response:
        app = create_app(EmulatorConfig(state_file=path))
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://cloud") as http:
            assert (await http.get("/_emulator/state")).status_code == 200
            return await http.get(
                f"/v1/products/{PRODUCT}/devices", headers={"Authorization": "Bearer " + "u" * 40}
            )

    r = asyncio.run(list_devices())
    assert r.status_code == 200
    assert [d["id"] for d in r.json()["devices"]] == [devices[2].id]

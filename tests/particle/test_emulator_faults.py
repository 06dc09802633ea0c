"""Rate limiting, injected faults, counters and the admin surface of the local cloud."""

from __future__ import annotations

import httpx2
import pytest

from trayline.particle.emulator import EmulatorConfig, create_app, parse_rate_limit
from trayline.particle.emulator.faults import FaultDice, SlidingWindow


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_counts_per_key_and_says_when_a_slot_frees() -> None:
    clock = FakeClock()
    window = SlidingWindow(2, 10.0, clock)
    assert window.hit("a") is None
    clock.now += 4
    assert window.hit("a") is None
    assert window.hit("a") == pytest.approx(6.0)
    assert window.hit("b") is None
    clock.now += 6.01
    assert window.hit("a") is None  # the first hit slid out
    assert SlidingWindow.retry_after(0.2) == 1 and SlidingWindow.retry_after(6.01) == 7


def test_parse_rate_limit() -> None:
    assert parse_rate_limit("10000/300") == (10000, 300.0)
    assert parse_rate_limit("50/1h") == (50, 3600.0)
    for bad in ("abc", "0/5", "5/0", "5"):
        with pytest.raises(ValueError):
            parse_rate_limit(bad)


def test_fault_dice_are_reproducible_with_a_seed() -> None:
    def rolls(seed: int) -> list[object]:
        dice = FaultDice(latency_ms=1, jitter_ms=5, error_rate=0.3, drop_rate=0.1, seed=seed)
        return [dice.roll() for _ in range(50)]

    assert rolls(1) == rolls(1)
    assert rolls(1) != rolls(2)
    plans = rolls(3)
    assert any(p.drop for p in plans)  # type: ignore[attr-defined]
    assert {p.error_status for p in plans} - {None} <= {500, 502, 503}  # type: ignore[attr-defined]


def _client(app: httpx2._transports.asgi._ASGIApp) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://cloud")


async def test_rate_limit_429_with_retry_after_then_recovers() -> None:
    app = create_app(EmulatorConfig(rate_limit=(3, 10.0)))
    clock = FakeClock()
    app.clock = clock
    app.apply_faults(rate_limit=(3, 10.0))
    token = app.cloud.add_token("me@x")
    async with _client(app) as http:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            assert (await http.get("/v1/user", headers=headers)).status_code == 200
        clock.now += 2.5
        r = await http.get("/v1/user", headers=headers)
        assert r.status_code == 429
        assert r.json() == {"ok": False, "error": "Too many requests"}
        assert r.headers["Retry-After"] == "8"
        clock.now += 7.6
        assert (await http.get("/v1/user", headers=headers)).status_code == 200
        state = (await http.get("/_emulator/state")).json()  # admin is never limited
    counters = state["counters"]
    assert counters["requests"] == 5
    assert counters["by_status"] == {"200": 4, "429": 1}
    assert counters["by_route"] == {"GET /v1/user": 5}


async def test_faults_via_admin_errors_drops_and_latency() -> None:
    app = create_app(EmulatorConfig(seed=5))
    token = app.cloud.add_token("me@x")
    headers = {"Authorization": f"Bearer {token}"}
    async with _client(app) as http:
        r = await http.post("/_emulator/faults", json={"error_rate": 1})
        assert r.json()["error_rate"] == 1
        r = await http.get("/v1/user", headers=headers)
        assert r.status_code in (500, 502, 503)
        assert r.json()["ok"] is False and r.json()["error"]
        await http.post("/_emulator/faults", json={"error_rate": 0, "drop_rate": 1})
        with pytest.raises(httpx2.TransportError):
            await http.get("/v1/user", headers=headers)
        await http.post("/_emulator/faults", json={"drop_rate": 0, "latency_ms": 30})
        r = await http.get("/v1/user", headers=headers)
        assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.025
        r = await http.post("/_emulator/faults", json={"rate_limit": "1/60", "latency_ms": 0})
        assert r.json()["rate_limit"] == "1/60"
        assert (await http.get("/v1/user", headers=headers)).status_code == 200
        assert (await http.get("/v1/user", headers=headers)).status_code == 429
        r = await http.post("/_emulator/faults", json={"rate_limit": "abc"})
        assert r.status_code == 400
        counters = (await http.get("/_emulator/state")).json()["counters"]
    assert counters["dropped"] == 1
    assert counters["requests"] == 5
    assert counters["by_route"]["GET /v1/user"] == 5


async def test_admin_products_tokens_devices_state_and_reset() -> None:
    app = create_app(EmulatorConfig(seed=1))
    async with _client(app) as http:
        r = await http.post(
            "/_emulator/products",
            json={"id": 77, "slug": "trk", "platform_id": 26, "name": "Trackers"},
        )
        assert r.status_code == 201
        r = await http.post(
            "/_emulator/tokens",
            json={"username": "api@x", "scopes": ["devices:list"], "api_user": True},
        )
        token = r.json()["token"]
        r = await http.post("/_emulator/devices", json={"sku": "T404", "count": 2})
        devices = r.json()["devices"]
        assert len(devices) == 2 and devices[0]["serial_number"].startswith("P031")
        r = await http.post(
            "/_emulator/devices", json={"sku": "ONE404", "count": 1, "product_id": 77}
        )
        assert r.json()["devices"][0]["product_id"] == 77
        r = await http.post("/_emulator/devices", json={"sku": "NOPE", "count": 1})
        assert r.status_code == 400 and "unknown SKU" in r.json()["error"]
        r = await http.get("/v1/products/trk/devices", headers={"Authorization": f"Bearer {token}"})
        assert len(r.json()["devices"]) == 1
        state = (await http.get("/_emulator/state")).json()
        assert set(state) == {"products", "devices", "groups", "sims", "counters"}
        device = state["devices"][0]
        for key in ("id", "serial_number", "iccid", "imei", "platform_id", "product_id"):
            assert key in device
        assert device["product_id"] is None and device["groups"] == [] and device["owner"] is None
        assert device["platform_id"] == 26
        assert state["products"][0]["slug"] == "trk"
        assert state["counters"]["requests"] == 1
        assert (await http.post("/_emulator/reset")).json() == {"ok": True}
        state = (await http.get("/_emulator/state")).json()
        assert state["devices"] == [] and state["counters"]["requests"] == 0
        r = await http.get("/v1/user", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


async def test_ten_thousand_devices_group_listing_is_cheap() -> None:
    app = create_app(EmulatorConfig(seed=2))
    store = app.cloud
    product = store.add_product(1, "big", 13)
    devices = store.make_devices("BRN404", 10_000, product_id=1)
    store.ensure_group(product, "small")
    for device in devices[:5]:
        store.change_groups(device, ["small"], [])
    token = store.add_token("me@x")
    async with _client(app) as http:
        r = await http.get(
            "/v1/products/1/devices?groups=small", headers={"Authorization": f"Bearer {token}"}
        )
    assert len(r.json()["devices"]) == 5

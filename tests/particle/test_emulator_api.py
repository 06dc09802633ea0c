"""The local cloud's Particle endpoints, in-process through httpx2's ASGITransport.

Each test speaks plain HTTP the way a client would (JSON, form with ``key[]``
arrays, multipart files) and checks status codes and the exact error shapes of
shared/spec/particle-cloud-api.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest

from trayline.core.ids import Imei
from trayline.particle.emulator import EmulatorApp, EmulatorConfig, create_app
from trayline.particle.emulator.state import Device

PRODUCT = 4242
SLUG = "line-a"


@dataclass
class Cloud:
    app: EmulatorApp
    http: httpx2.AsyncClient
    token: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def devices(self, count: int, sku: str = "BRN404", **kw: object) -> list[Device]:
        return self.app.cloud.make_devices(sku, count, **kw)  # type: ignore[arg-type]


def make_cloud(config: EmulatorConfig | None = None) -> tuple[EmulatorApp, str]:
    app = create_app(config or EmulatorConfig(seed=7))
    app.cloud.add_product(PRODUCT, SLUG, platform_id=13, name="Line A")
    token = app.cloud.add_token("me@example.com")
    return app, token


@pytest.fixture
async def cloud() -> AsyncIterator[Cloud]:
    app, token = make_cloud()
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://cloud") as http:
        yield Cloud(app, http, token)


async def _client(config: EmulatorConfig) -> tuple[Cloud, httpx2.AsyncClient]:
    app, token = make_cloud(config)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://cloud")
    return Cloud(app, http, token), http


# ------------------------------------------------------------------------- auth
async def test_bad_token_is_401_invalid_token(cloud: Cloud) -> None:
    r = await cloud.http.get(f"/v1/products/{PRODUCT}/devices", headers=cloud.auth("nope"))
    assert r.status_code == 401
    assert r.json() == {
        "error": "invalid_token",
        "error_description": "The access token provided is invalid.",
    }


async def test_missing_token_is_400_invalid_request(cloud: Cloud) -> None:
    r = await cloud.http.get(f"/v1/products/{PRODUCT}/devices")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


async def test_token_in_query_and_form_body_unless_new_account(cloud: Cloud) -> None:
    r = await cloud.http.get(f"/v1/products/{PRODUCT}/groups?access_token={cloud.token}")
    assert r.status_code == 200
    r = await cloud.http.post(
        f"/v1/products/{PRODUCT}/groups", data={"name": "g1", "access_token": cloud.token}
    )
    assert r.status_code == 201
    strict, http = await _client(EmulatorConfig(new_account=True))
    async with http:
        r = await http.get(f"/v1/products/{PRODUCT}/groups?access_token={strict.token}")
        assert r.status_code == 400
        r = await http.get(f"/v1/products/{PRODUCT}/groups", headers=strict.auth())
        assert r.status_code == 200


async def test_missing_scope_is_403(cloud: Cloud) -> None:
    limited = cloud.app.cloud.add_token("api@x", scopes=["devices:list"], api_user=True)
    r = await cloud.http.get(f"/v1/products/{PRODUCT}/devices", headers=cloud.auth(limited))
    assert r.status_code == 200
    r = await cloud.http.post(
        f"/v1/products/{PRODUCT}/devices", json={"id": "x" * 24}, headers=cloud.auth(limited)
    )
    assert r.status_code == 403
    assert r.json()["error"] == "Permission Denied"
    assert "devices:import" in r.json()["info"]


async def test_unknown_product_is_404_and_slug_works(cloud: Cloud) -> None:
    r = await cloud.http.get("/v1/products/999/devices", headers=cloud.auth())
    assert r.status_code == 404
    assert r.json()["ok"] is False
    r = await cloud.http.get(f"/v1/products/{SLUG}", headers=cloud.auth())
    assert r.json()["product"]["id"] == PRODUCT


async def test_user_and_unknown_path(cloud: Cloud) -> None:
    r = await cloud.http.get("/v1/user", headers=cloud.auth())
    assert r.json()["username"] == "me@example.com"
    r = await cloud.http.get("/v1/nothing-here", headers=cloud.auth())
    assert r.status_code == 404
    assert r.json() == {"ok": False, "error": "Not Found"}


# ------------------------------------------------------------------------- serial lookup
async def test_serial_lookup_fields_and_404(cloud: Cloud) -> None:
    (device,) = cloud.devices(1)
    r = await cloud.http.get(
        f"/v1/serial_numbers/{device.serial_number.lower()}", headers=cloud.auth()
    )
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True
    assert body["device_id"] == device.id
    assert body["platform_id"] == 13
    assert body["iccid"] == device.iccid
    r = await cloud.http.get("/v1/serial_numbers/P028AAAAAAAAAAA", headers=cloud.auth())
    assert r.status_code == 404
    assert r.json()["ok"] is False and r.json()["error"]


async def test_serial_lookup_legacy_field_and_user_budget() -> None:
    cfg = EmulatorConfig(legacy_serial_field=True, serial_lookup_limit=(2, 3600))
    cloud, http = await _client(cfg)
    async with http:
        (device,) = cloud.devices(1)
        second = cloud.app.cloud.add_token("me@example.com")  # same account, other token
        other = cloud.app.cloud.add_token("other@example.com")
        url = f"/v1/serial_numbers/{device.serial_number}"
        r = await http.get(url, headers=cloud.auth())
        assert r.json()["deviceID"] == device.id and "device_id" not in r.json()
        assert (await http.get(url, headers=cloud.auth(second))).status_code == 200
        r = await http.get(url, headers=cloud.auth())
        assert r.status_code == 429
        assert r.json() == {"ok": False, "error": "Too many requests"}
        assert int(r.headers["Retry-After"]) >= 3599
        assert (await http.get(url, headers=cloud.auth(other))).status_code == 200


# ------------------------------------------------------------------------- import
async def test_import_classifies_and_echoes_identifiers(cloud: Cloud) -> None:
    fresh, existing, foreign, protected = cloud.devices(4)
    protected.protected = True
    boron_in_other = cloud.app.cloud.add_product(5, "other", platform_id=13)
    cloud.app.cloud.import_devices(boron_in_other, [foreign.id])
    cloud.app.cloud.import_devices(cloud.app.cloud.products[PRODUCT], [existing.id])
    (bsom,) = cloud.devices(1, sku="B404")
    ids = [
        fresh.serial_number.lower(),
        existing.id.upper(),
        foreign.id,
        bsom.imei,
        protected.iccid,
        "NOT-A-DEVICE",
    ]
    r = await cloud.http.post(
        f"/v1/products/{SLUG}/devices", json={"ids": ids}, headers=cloud.auth()
    )
    assert r.status_code == 200
    assert r.json() == {
        "updated": 1,
        "updatedDeviceIds": [fresh.serial_number.lower()],
        "existingDeviceIds": [existing.id.upper()],
        "nonmemberDeviceIds": [],
        "invalidDeviceIds": [foreign.id, bsom.imei, "NOT-A-DEVICE"],
        "protectedDeviceIds": [protected.iccid],
    }
    assert fresh.product_id == PRODUCT
    assert cloud.app.cloud.sims[fresh.iccid].status == "active"  # embedded SIM activated
    r = await cloud.http.post(
        f"/v1/products/{SLUG}/devices", data={"id": fresh.id}, headers=cloud.auth()
    )
    assert r.json()["updated"] == 0 and r.json()["existingDeviceIds"] == [fresh.id]


async def test_import_nonmember_bucket_is_configurable() -> None:
    cfg = EmulatorConfig(
        other_product_bucket="nonmemberDeviceIds", platform_mismatch_bucket="nonmemberDeviceIds"
    )
    cloud, http = await _client(cfg)
    async with http:
        (foreign,) = cloud.devices(1)
        cloud.app.cloud.import_devices(cloud.app.cloud.add_product(5, "other", 13), [foreign.id])
        (bsom,) = cloud.devices(1, sku="B404")
        r = await http.post(
            f"/v1/products/{PRODUCT}/devices",
            json={"ids": [foreign.id, bsom.id]},
            headers=cloud.auth(),
        )
        assert r.json()["nonmemberDeviceIds"] == [foreign.id, bsom.id]
        assert r.json()["invalidDeviceIds"] == []


async def test_import_multipart_file_with_claim_user_query(cloud: Cloud) -> None:
    devices = cloud.devices(500)
    text = "\r\n".join(d.serial_number for d in devices) + "\n\n"
    r = await cloud.http.post(
        f"/v1/products/{PRODUCT}/devices?claim_user=op@example.com",
        files={"file": ("devices.txt", text.encode(), "text/plain")},
        data={"import_sims": "true"},
        headers=cloud.auth(),
    )
    assert r.status_code == 200
    assert r.json()["updated"] == 500
    assert {d.owner for d in devices} == {"op@example.com"}


async def test_import_without_identifiers_is_400(cloud: Cloud) -> None:
    r = await cloud.http.post(f"/v1/products/{PRODUCT}/devices", json={}, headers=cloud.auth())
    assert r.status_code == 400
    assert r.json()["ok"] is False


async def test_imei_identifiers_have_valid_luhn(cloud: Cloud) -> None:
    for device in cloud.devices(20):
        assert Imei.parse(device.imei) == device.imei
        assert device.iccid.startswith("89") and len(device.mobile_secret) == 15
        assert device.serial_number.startswith("P028") and len(device.serial_number) == 15


# ------------------------------------------------------------------------- SIMs
async def test_sim_import_list_get_and_actions(cloud: Cloud) -> None:
    a, b = cloud.devices(2, sku="E260")  # 2G/3G Electron: separate 4FF SIM
    r = await cloud.http.post(
        f"/v1/products/{PRODUCT}/sims",
        content=f"sims[]={a.iccid}&sims[]={b.iccid}&sims[]=8900000000000000000",
        headers={**cloud.auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.json() == {"ok": True}
    cloud.app.cloud.add_product(10, "electrons", platform_id=10)
    r = await cloud.http.post(
        "/v1/products/electrons/sims", json={"sims": [a.iccid]}, headers=cloud.auth()
    )
    assert r.status_code == 200
    r = await cloud.http.get(f"/v1/products/{PRODUCT}/sims?per_page=1", headers=cloud.auth())
    assert len(r.json()["sims"]) == 1 and r.json()["meta"]["total_pages"] == 1
    r = await cloud.http.get(f"/v1/sims/{b.iccid}", headers=cloud.auth())
    assert r.json()["status"] == "active" and r.json()["_id"] == b.iccid
    r = await cloud.http.put(
        f"/v1/products/{PRODUCT}/sims/{b.iccid}",
        json={"action": "deactivate"},
        headers=cloud.auth(),
    )
    assert r.json()["status"] == "deactivated"
    r = await cloud.http.put(
        f"/v1/sims/{b.iccid}", data={"action": "reactivate"}, headers=cloud.auth()
    )
    assert r.json()["status"] == "active"
    r = await cloud.http.put(f"/v1/sims/{b.iccid}", json={"action": "fly"}, headers=cloud.auth())
    assert r.status_code == 400
    r = await cloud.http.get("/v1/sims/8900000000000000000", headers=cloud.auth())
    assert r.status_code == 404 and r.json()["ok"] is False
    r = await cloud.http.get("/v1/sims", headers=cloud.auth())
    assert r.status_code == 200 and r.json()["sims"] == []
    r = await cloud.http.delete(f"/v1/sims/{b.iccid}", headers=cloud.auth())
    assert r.status_code == 204


async def test_sim_import_file_brings_its_device(cloud: Cloud) -> None:
    (device,) = cloud.devices(1)
    r = await cloud.http.post(
        f"/v1/products/{PRODUCT}/sims",
        files={"file": ("sims.txt", device.iccid + "\n")},
        headers=cloud.auth(),
    )
    assert r.status_code == 200
    assert device.product_id == PRODUCT


# ------------------------------------------------------------------------- groups
async def test_group_lifecycle_and_errors(cloud: Cloud) -> None:
    base = f"/v1/products/{PRODUCT}/groups"
    r = await cloud.http.post(
        base, json={"name": "20261124_0050", "color": "#cae6f6"}, headers=cloud.auth()
    )
    assert r.status_code == 201
    assert r.json()["group"]["name"] == "20261124_0050"
    r = await cloud.http.post(base, data={"name": "20261124_0050"}, headers=cloud.auth())
    assert r.status_code == 400
    assert r.json() == {"ok": False, "error": "Group already exists"}
    for bad in ("Has Space", "UPPER", "x" * 65, ""):
        r = await cloud.http.post(base, json={"name": bad}, headers=cloud.auth())
        assert r.status_code == 400, bad
    await cloud.http.post(base, json={"name": "other"}, headers=cloud.auth())
    r = await cloud.http.get(f"{base}?name=2026", headers=cloud.auth())
    assert [g["name"] for g in r.json()["groups"]] == ["20261124_0050"]
    r = await cloud.http.get(f"{base}/nope", headers=cloud.auth())
    assert r.status_code == 404
    r = await cloud.http.put(
        f"{base}/other", json={"name": "renamed", "description": "d"}, headers=cloud.auth()
    )
    assert r.json()["group"]["name"] == "renamed"
    r = await cloud.http.put(
        f"{base}/renamed", json={"name": "20261124_0050"}, headers=cloud.auth()
    )
    assert r.status_code == 400
    r = await cloud.http.delete(f"{base}/renamed", headers=cloud.auth())
    assert r.status_code == 204
    r = await cloud.http.get(f"{base}/renamed", headers=cloud.auth())
    assert r.status_code == 404


async def test_uppercase_group_names_can_be_lowercased() -> None:
    cloud, http = await _client(EmulatorConfig(uppercase_group_names="lowercase"))
    async with http:
        r = await http.post(
            f"/v1/products/{PRODUCT}/groups", json={"name": "Line-A"}, headers=cloud.auth()
        )
        assert r.status_code == 201 and r.json()["group"]["name"] == "line-a"


async def test_batch_groups_add_remove_and_device_count(cloud: Cloud) -> None:
    devices = cloud.devices(3, product_id=PRODUCT)
    ids = [d.id for d in devices]
    url = f"/v1/products/{PRODUCT}/devices"
    body = {"action": "groups", "devices": ids, "metadata": {"add": ["lot-1", "lot-2"]}}
    r = await cloud.http.put(url, json=body, headers=cloud.auth())
    assert r.status_code == 200 and r.json() == {"ok": True}
    r = await cloud.http.put(url, json=body, headers=cloud.auth())  # repeat: no-op
    assert r.json() == {"ok": True}
    r = await cloud.http.put(
        url,
        json={"action": "groups", "devices": ids[:1], "metadata": {"remove": ["lot-2"]}},
        headers=cloud.auth(),
    )
    r = await cloud.http.get(f"/v1/products/{PRODUCT}/groups/lot-2", headers=cloud.auth())
    assert r.json()["group"]["device_count"] == 2
    assert devices[0].groups == ["lot-1"]
    r = await cloud.http.put(url, json={"action": "dance", "devices": ids}, headers=cloud.auth())
    assert r.status_code == 400 and r.json()["ok"] is False
    # unknown device IDs are skipped by default
    r = await cloud.http.put(
        url,
        json={"action": "groups", "devices": ["f" * 24], "metadata": {"add": ["lot-1"]}},
        headers=cloud.auth(),
    )
    assert r.status_code == 200


async def test_batch_add_unknown_group_can_be_an_error() -> None:
    cloud, http = await _client(EmulatorConfig(batch_add_creates_groups=False))
    async with http:
        (device,) = cloud.devices(1, product_id=PRODUCT)
        r = await http.put(
            f"/v1/products/{PRODUCT}/devices",
            json={"action": "groups", "devices": [device.id], "metadata": {"add": ["ghost"]}},
            headers=cloud.auth(),
        )
        assert r.status_code == 400
        assert r.json() == {"ok": False, "error": "Group ghost not found"}


# ------------------------------------------------------------------------- device update/get/delete
async def test_update_device_echoes_fields(cloud: Cloud) -> None:
    (device,) = cloud.devices(1, product_id=PRODUCT)
    url = f"/v1/products/{PRODUCT}/devices/{device.id}"
    r = await cloud.http.put(
        url, json={"name": device.serial_number, "unknown_field": 1}, headers=cloud.auth()
    )
    assert r.status_code == 200
    assert set(r.json()) == {"id", "name", "updated_at"}
    assert r.json()["name"] == device.serial_number
    r = await cloud.http.put(
        url,
        data={"notes": "bench 3", "development": "true", "desired_firmware_version": "7"},
        headers=cloud.auth(),
    )
    assert r.json()["notes"] == "bench 3" and r.json()["development"] is True
    assert r.json()["desired_firmware_version"] == 7
    r = await cloud.http.put(
        url,
        content="groups[]=a&groups[]=b",
        headers={**cloud.auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json()["groups"] == ["a", "b"]
    r = await cloud.http.get(f"/v1/products/{PRODUCT}/groups/a", headers=cloud.auth())
    assert r.json()["group"]["device_count"] == 1  # created automatically
    r = await cloud.http.get(url, headers=cloud.auth())
    body = r.json()
    assert body["serial_number"] == device.serial_number and body["groups"] == ["a", "b"]


async def test_device_not_in_product_is_403_permission_denied(cloud: Cloud) -> None:
    (device,) = cloud.devices(1)
    url = f"/v1/products/{PRODUCT}/devices/{device.id}"
    for method in ("GET", "PUT", "DELETE"):
        r = await cloud.http.request(method, url, json={"name": "x"}, headers=cloud.auth())
        assert r.status_code == 403, method
        assert r.json()["error"] == "Permission Denied"
        assert "I didn't recognize that device name or ID" in r.json()["info"]


async def test_delete_device_204_then_403(cloud: Cloud) -> None:
    (device,) = cloud.devices(1, product_id=PRODUCT)
    url = f"/v1/products/{PRODUCT}/devices/{device.id}"
    assert (await cloud.http.delete(url, headers=cloud.auth())).status_code == 204
    assert (await cloud.http.delete(url, headers=cloud.auth())).status_code == 403
    assert device.product_id is None


# ------------------------------------------------------------------------- listing
async def test_list_filters_sorting_and_paging(cloud: Cloud) -> None:
    devices = cloud.devices(30, product_id=PRODUCT)
    cloud.devices(5)  # not in the product
    store = cloud.app.cloud
    for i, device in enumerate(devices[:10]):
        store.update_device(device, {"name": f"unit-{i:02d}"})
    store.ensure_group(store.products[PRODUCT], "g")
    for device in devices[5:8]:
        store.change_groups(device, ["g"], [])
    url = f"/v1/products/{PRODUCT}/devices"
    r = await cloud.http.get(url, headers=cloud.auth())
    body = r.json()
    assert len(body["devices"]) == 25 and body["meta"]["total_pages"] == 2
    assert body["customers"] == []
    r = await cloud.http.get(f"{url}?page=2&perPage=25", headers=cloud.auth())
    assert len(r.json()["devices"]) == 5
    r = await cloud.http.get(f"{url}?per_page=7", headers=cloud.auth())
    assert r.json()["meta"]["total_pages"] == 5
    r = await cloud.http.get(f"{url}?groups=g,nope", headers=cloud.auth())
    assert [d["id"] for d in r.json()["devices"]] == [d.id for d in devices[5:8]]
    r = await cloud.http.get(
        f"{url}?deviceName=UNIT-0&sortAttr=deviceName&sortDir=desc", headers=cloud.auth()
    )
    assert [d["name"] for d in r.json()["devices"]][:2] == ["unit-09", "unit-08"]
    serial = devices[3].serial_number
    r = await cloud.http.get(f"{url}?serialNumber={serial}", headers=cloud.auth())
    assert [d["id"] for d in r.json()["devices"]] == [devices[3].id]
    r = await cloud.http.get(f"{url}?serialNumber={serial[:6].lower()}", headers=cloud.auth())
    assert devices[3].id in [d["id"] for d in r.json()["devices"]]
    r = await cloud.http.get(f"{url}?deviceId={devices[4].id[:10]}", headers=cloud.auth())
    assert [d["id"] for d in r.json()["devices"]] == [devices[4].id]
    r = await cloud.http.get(f"{url}?page=0", headers=cloud.auth())
    assert r.status_code == 400


# ------------------------------------------------------------------------- claim
async def test_claim_same_owner_other_owner_and_api_user(cloud: Cloud) -> None:
    (device,) = cloud.devices(1)
    r = await cloud.http.post("/v1/devices", json={"id": device.id.upper()}, headers=cloud.auth())
    assert r.status_code == 200 and r.json()["ok"] is True
    assert device.owner == "me@example.com"
    r = await cloud.http.post("/v1/devices", data={"id": device.id}, headers=cloud.auth())
    assert r.status_code == 200
    other = cloud.app.cloud.add_token("someone@else.com")
    r = await cloud.http.post("/v1/devices", json={"id": device.id}, headers=cloud.auth(other))
    assert r.status_code == 403
    assert r.json()["errors"] == ["That belongs to someone else."]
    r = await cloud.http.post(
        "/v1/devices", json={"id": device.id, "request_transfer": True}, headers=cloud.auth(other)
    )
    assert r.status_code == 200 and "transfer_id" in r.json()
    api = cloud.app.cloud.add_token("api@x", scopes=["devices:import"], api_user=True)
    r = await cloud.http.post("/v1/devices", json={"id": device.id}, headers=cloud.auth(api))
    assert r.status_code == 400
    assert r.json() == {
        "error": "unauthorized",
        "error_description": "API users are not allowed to call this endpoint",
    }
    r = await cloud.http.delete(f"/v1/devices/{device.id}", headers=cloud.auth())
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert device.owner is None
    r = await cloud.http.get("/v1/devices", headers=cloud.auth())
    assert r.json() == []


async def test_api_user_claim_status_is_configurable() -> None:
    cloud, http = await _client(EmulatorConfig(api_user_forbidden_status=403))
    async with http:
        (device,) = cloud.devices(1)
        api = cloud.app.cloud.add_token("api@x", scopes=[], api_user=True)
        r = await http.post("/v1/devices", json={"id": device.id}, headers=cloud.auth(api))
        assert r.status_code == 403 and r.json()["error"] == "unauthorized"


async def test_product_device_owner_removal(cloud: Cloud) -> None:
    (device,) = cloud.devices(1, product_id=PRODUCT, owner="me@example.com")
    r = await cloud.http.delete(
        f"/v1/products/{PRODUCT}/devices/{device.id}/owner", headers=cloud.auth()
    )
    assert r.status_code == 200 and device.owner is None


async def test_bad_json_is_400(cloud: Cloud) -> None:
    r = await cloud.http.post(
        f"/v1/products/{PRODUCT}/groups",
        content=b"{nope",
        headers={**cloud.auth(), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["ok"] is False

"""``cloud serve --tray DIR`` (a virtual tray's devices.json) and devices coming online.

The station's virtual tray and the local cloud must agree on every device: the
cloud knows exactly the tray's devices (serial lookup, import, SIM by ICCID),
reads nothing but DIR/devices.json (a documented contract, checked entry by
entry), and can show a device online with a ``last_heard`` for the station's
connectivity check.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

from trayline.core.skus import get_sku
from trayline.particle.emulator import EmulatorConfig, create_app
from trayline.particle.emulator.factory import make_unit
from trayline.particle.emulator.tray import TrayFileError, add_tray, read_tray

PRODUCT = 4242
SERVE = [sys.executable, "-m", "trayline", "cloud", "serve"]


def _entries(count: int, sku: str = "BRN404", seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    entries = []
    for _ in range(count):
        unit = make_unit(get_sku(sku), rng)
        entries.append(
            {
                "device_id": unit.id.upper(),  # any case; the cloud keeps lowercase
                "serial_number": unit.serial_number,
                "iccid": unit.iccid,
                "imei": unit.imei,
                "sku": sku,
                "platform_id": unit.platform_id,
                "faults": {"no_usb": False},
                "readings": {"vbat": 4.1},
                "slot": 7,  # unknown fields are ignored
            }
        )
    return entries


def _tray(tmp_path: Path, entries: object) -> Path:
    folder = tmp_path / "tray"
    folder.mkdir(exist_ok=True)
    (folder / "devices.json").write_text(json.dumps(entries))
    return folder


def test_read_tray_gives_exactly_the_files_devices(tmp_path: Path) -> None:
    entries = _entries(3) + _entries(1, sku="E260", seed=9)
    entries[0]["mobile_secret"] = "ABCDEFGHIJKLMNO"
    units = read_tray(_tray(tmp_path, entries), random.Random(1))
    assert [u.id for u in units] == [e["device_id"].lower() for e in entries]
    assert [u.serial_number for u in units] == [e["serial_number"] for e in entries]
    assert units[0].mobile_secret == "ABCDEFGHIJKLMNO" and len(units[1].mobile_secret) == 15
    assert units[3].sku == "E260" and units[3].sim_embedded is False
    app = create_app(EmulatorConfig())
    added = add_tray(app.cloud, units, tmp_path / "tray" / "devices.json")
    assert len(added) == 4 and len(app.cloud.sims) == 4
    assert add_tray(app.cloud, units, tmp_path / "tray" / "devices.json") == []  # resumed: kept


def test_a_tray_made_by_trayline_virtual_loads_whole(tmp_path: Path) -> None:
    """The contract holds between the two sides: the simulator writes, the cloud reads."""
    from trayline.virtual.tray import Tray

    boron = Tray.create(tmp_path / "boron", get_sku("BRN404"), 4, seed=1)
    electron = Tray.create(tmp_path / "electron", get_sku("E260"), 2, seed=2)  # no secret
    app = create_app(EmulatorConfig(seed=1))
    for tray in (boron, electron):
        units = read_tray(tray.folder, app.cloud.rng)
        add_tray(app.cloud, units, tray.devices_json)
    expected = {r.device_id: r.identity for t in (boron, electron) for r in t.records()}
    assert app.cloud.devices.keys() == expected.keys()
    for device_id, identity in expected.items():
        device = app.cloud.devices[device_id]
        assert (device.serial_number, device.iccid, device.imei) == (
            identity.serial_number,
            identity.iccid,
            identity.imei,
        )
        assert device.mobile_secret == (identity.mobile_secret or device.mobile_secret)
        assert device.sim_embedded is (identity.sku != "E260")


def _misread(imei: str) -> str:
    """The IMEI with its check digit wrong, as a misread label gives it."""
    return imei[:-1] + str((int(imei[-1]) + 1) % 10)


def _bad(entries: list[dict[str, Any]], index: int, field: str, value: object) -> object:
    if value is KeyError:
        del entries[index][field]
    else:
        entries[index][field] = value
    return entries


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda e: _bad(e, 1, "imei", KeyError), "[1].imei: missing"),
        (lambda e: _bad(e, 0, "device_id", "xyz"), "[0].device_id"),
        (lambda e: _bad(e, 2, "serial_number", 123), "[2].serial_number"),
        (lambda e: _bad(e, 1, "iccid", "1234"), "[1].iccid"),
        (lambda e: _bad(e, 1, "imei", _misread(e[1]["imei"])), "[1].imei"),
        (lambda e: _bad(e, 0, "sku", "NOPE"), "[0].sku"),
        (lambda e: _bad(e, 0, "platform_id", 23), "[0].platform_id"),
        (lambda e: _bad(e, 0, "platform_id", True), "[0].platform_id"),
        (lambda e: _bad(e, 2, "faults", []), "[2].faults"),
        (lambda e: _bad(e, 2, "readings", None), "[2].readings"),
        (lambda e: _bad(e, 2, "serial_number", e[0]["serial_number"]), "[2].serial_number"),
        (lambda e: [*e, "a device"], "[3]: expected an object"),
        (lambda e: {"devices": e}, "expected a JSON list"),
    ],
)
def test_a_bad_tray_file_names_file_index_and_field(
    tmp_path: Path, mutate: Any, where: str
) -> None:
    folder = _tray(tmp_path, mutate(_entries(3)))
    with pytest.raises(TrayFileError) as caught:
        read_tray(folder, random.Random(1))
    message = str(caught.value)
    assert str(folder / "devices.json") in message and where in message
    assert "\n" not in message


def test_unreadable_tray_files(tmp_path: Path) -> None:
    with pytest.raises(TrayFileError, match="not found"):
        read_tray(tmp_path, random.Random(1))
    (tmp_path / "devices.json").write_text("[{")
    with pytest.raises(TrayFileError, match="not valid JSON"):
        read_tray(tmp_path, random.Random(1))
    (tmp_path / "devices.json").write_bytes(b"[\xff]")
    with pytest.raises(TrayFileError, match="not UTF-8"):
        read_tray(tmp_path, random.Random(1))


def test_a_tray_that_clashes_with_the_cloud_loads_nothing(tmp_path: Path) -> None:
    app = create_app(EmulatorConfig(seed=1))
    (known,) = app.cloud.make_devices("BRN404", 1)
    entries = _entries(2)
    entries[1]["serial_number"] = known.serial_number
    units = read_tray(_tray(tmp_path, entries), random.Random(1))
    with pytest.raises(TrayFileError, match=r"\[1\]\.serial_number: already belongs"):
        add_tray(app.cloud, units, tmp_path / "tray" / "devices.json")
    assert list(app.cloud.devices) == [known.id]


def test_cli_serve_tray_knows_exactly_its_devices_online(tmp_path: Path) -> None:
    entries = _entries(3)
    folder = _tray(tmp_path, entries)
    proc = subprocess.Popen(
        [*SERVE, "--port", "0", "--tray", str(folder), "--online"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"trayline cloud listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        with httpx2.Client(base_url=url, timeout=5) as http:
            http.post(
                "/_emulator/products", json={"id": PRODUCT, "slug": "line", "platform_id": 13}
            )
            token = http.post("/_emulator/tokens", json={"username": "me@x"}).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            state = http.get("/_emulator/state").json()
            assert sorted(d["id"] for d in state["devices"]) == sorted(
                e["device_id"].lower() for e in entries
            )
            r = http.get(f"/v1/serial_numbers/{entries[0]['serial_number']}", headers=auth)
            assert r.json()["device_id"] == entries[0]["device_id"].lower()
            assert r.json()["iccid"] == entries[0]["iccid"]
            r = http.post(
                f"/v1/products/{PRODUCT}/devices",
                json={"ids": [entries[1]["serial_number"], entries[2]["imei"]]},
                headers=auth,
            )
            assert r.json()["updated"] == 2
            r = http.get(f"/v1/products/{PRODUCT}/sims?iccid={entries[1]['iccid']}", headers=auth)
            assert [s["status"] for s in r.json()["sims"]] == ["active"]
            device_id = entries[1]["device_id"].lower()
            r = http.get(f"/v1/products/{PRODUCT}/devices/{device_id}", headers=auth)
            assert r.json()["online"] is True and r.json()["last_heard"]
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert f"tray {folder}: 3 devices" in err


def test_cli_serve_bad_tray_is_one_line_and_exit_2(tmp_path: Path) -> None:
    entries = _entries(2)
    del entries[1]["iccid"]
    folder = _tray(tmp_path, entries)
    done = subprocess.run(
        [*SERVE, "--port", "0", "--tray", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"error: {folder / 'devices.json'}: [1].iccid: missing"


# ------------------------------------------------------------------------- online
async def test_a_device_comes_online_and_goes_away() -> None:
    app = create_app(EmulatorConfig(seed=2))
    app.cloud.add_product(PRODUCT, "line", platform_id=13)
    token = app.cloud.add_token("me@x")
    (device,) = app.cloud.make_devices("BRN404", 1, product_id=PRODUCT)
    transport = httpx2.ASGITransport(app=app)
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(transport=transport, base_url="http://cloud") as http:
        url = f"/v1/products/{PRODUCT}/devices/{device.id}"
        before = (await http.get(url, headers=auth)).json()
        assert before["online"] is False and before["last_heard"] is None
        r = await http.post(f"/_emulator/devices/{device.serial_number}/online", json={})
        assert r.status_code == 200 and r.json()["online"] is True  # by serial, online default
        body = (await http.get(url, headers=auth)).json()
        assert body["online"] is True and body["connected"] is True
        assert body["last_heard"] and body["last_handshake_at"]
        listed = (await http.get(f"/v1/products/{PRODUCT}/devices", headers=auth)).json()
        assert listed["devices"][0]["online"] is True
        heard = body["last_heard"]
        r = await http.post(f"/_emulator/devices/{device.id}/online", json={"online": False})
        body = (await http.get(url, headers=auth)).json()
        assert body["online"] is False and body["last_heard"] == heard  # last heard stays
        r = await http.post(f"/_emulator/devices/{device.id}/online", json={"online": "later"})
        assert r.status_code == 400 and device.online is False
        r = await http.post("/_emulator/devices/" + "0" * 24 + "/online", json={"online": True})
        assert r.status_code == 404 and r.json()["ok"] is False
        r = await http.post("/_emulator/devices", json={"sku": "B404", "online": True})
        assert r.json()["devices"][0]["online"] is True
        assert r.json()["devices"][0]["last_heard"]

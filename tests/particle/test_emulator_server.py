"""The local cloud over a real socket, its state file, and ``trayline cloud serve``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from trayline.particle.emulator import EmulatorConfig, EmulatorState, create_app
from trayline.particle.emulator import serve_in_background as serve

TRAYLINE = [sys.executable, "-m", "trayline"]


def test_serve_in_background_speaks_http_and_drops_connections() -> None:
    app = create_app(EmulatorConfig(seed=1))
    app.cloud.add_product(1, "p", 13)
    token = app.cloud.add_token("me@x")
    (device,) = app.cloud.make_devices("BRN404", 1)
    with serve(app) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx2.Client(base_url=url, headers=headers, timeout=5) as http:
            r = http.post("/v1/products/p/devices", files={"file": ("d.txt", device.id)})
            assert r.json()["updatedDeviceIds"] == [device.id]
            app.apply_faults(drop_rate=1.0)
            with pytest.raises(httpx2.TransportError):
                http.get("/v1/user")
            app.apply_faults(drop_rate=0.0)
            assert http.get("/v1/user").status_code == 200


def test_state_file_round_trip_and_atomic_write(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    app = create_app(EmulatorConfig(seed=3, state_file=path, save_interval_s=0))
    store = app.cloud
    product = store.add_product(9, "nine", 13)
    devices = store.make_devices("BRN404", 3, product_id=9)
    store.ensure_group(product, "lot")
    store.change_groups(devices[0], ["lot"], [])
    store.update_device(devices[1], {"name": "renamed"})
    token = store.add_token("me@x", scopes=["devices:list"], api_user=True)
    app.save_now()
    assert path.stat().st_mode & 0o777 == 0o600  # holds tokens
    assert not list(tmp_path.glob(".cloud.json.*.tmp"))
    loaded = EmulatorState.load(path)
    assert loaded.snapshot() == store.snapshot()
    assert loaded.tokens[token].scopes == ["devices:list"]
    assert loaded.group_members[(9, "lot")] == {devices[0].id: None}
    assert loaded.find_device(devices[2].serial_number) is not None
    again = create_app(EmulatorConfig(state_file=path))  # create_app loads the file
    assert again.cloud.devices.keys() == store.devices.keys()
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a trayline cloud state file"):
        EmulatorState.load(path)


def test_mutations_are_saved_after_requests_and_on_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    app = create_app(EmulatorConfig(state_file=path, save_interval_s=60))
    with serve(app) as url, httpx2.Client(base_url=url) as http:
        http.post("/_emulator/products", json={"id": 3, "slug": "three", "platform_id": 13})
        assert path.exists()  # first mutation saves at once, later ones every 60 s
        http.post("/_emulator/devices", json={"sku": "B404", "count": 2})
    data = json.loads(path.read_text())
    assert len(data["devices"]) == 2  # saved on shutdown


def _start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TRAYLINE, "cloud", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serve_prints_the_listening_line_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    proc = _start_cli("--seed", "BRN404:3", "--seed", "E260:1", "--state", str(path))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"trayline cloud listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        assert int(match.group(2)) > 0
        assert "_emulator/tokens" in proc.stdout.readline()
        state = httpx2.get(f"{match.group(1)}/_emulator/state", timeout=5).json()
        assert len(state["devices"]) == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert len(json.loads(path.read_text())["devices"]) == 4
    proc = _start_cli("--seed", "BRN404:3", "--state", str(path))  # resume: no new devices
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        assert len(httpx2.get(f"{url}/_emulator/state", timeout=5).json()["devices"]) == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "NOPE:5"], "unknown SKU"),
        (["--seed", "BRN404"], "SKU:COUNT"),
        (["--rate-limit", "abc"], "not a rate limit"),
        (["--error-rate", "2"], "fraction"),
    ],
)
def test_cli_serve_rejects_bad_options(args: list[str], message: str) -> None:
    done = subprocess.run(
        [*TRAYLINE, "cloud", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr

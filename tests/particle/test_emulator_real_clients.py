"""The local cloud against Particle's own clients: the ``particle`` CLI and particle-api-js.

An emulator is only as good as its agreement with real clients. These tests run
``trayline cloud serve``, point a throw-away HOME's particle profile at it
(``~/.particle/particle.config.json`` with ``apiUrl`` and ``access_token``), and
run the unmodified npm packages against it.

They need node and the packages installed by ``scripts/check-particle-cli.sh``
(into the gitignored ``build/particle-cli``, or the folder named by
``TRAYLINE_PARTICLE_CLI_DIR``); without them they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI_DIR = Path(os.environ.get("TRAYLINE_PARTICLE_CLI_DIR", ROOT / "build" / "particle-cli"))
PARTICLE = CLI_DIR / "node_modules" / ".bin" / "particle"
API_JS = CLI_DIR / "node_modules" / "particle-api-js"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not PARTICLE.exists(),
        reason=f"particle-cli not installed in {CLI_DIR}: run scripts/check-particle-cli.sh",
    ),
]


@pytest.fixture
def cloud_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trayline", "cloud", "serve", "--port", "0", "--random-seed", "11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _admin(url: str, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{url}/_emulator/{path}", json=body, timeout=5)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def _particle(home: Path, url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    (home / ".particle").mkdir(exist_ok=True)
    profile = {"apiUrl": url, "access_token": token, "username": "me@example.com"}
    (home / ".particle" / "particle.config.json").write_text(json.dumps(profile))
    env = {**os.environ, "HOME": str(home), "PARTICLE_DISABLE_UPDATE": "true", "NO_COLOR": "1"}
    return subprocess.run(
        [str(PARTICLE), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_particle_cli_product_device_add_file(cloud_url: str, tmp_path: Path) -> None:
    _admin(cloud_url, "products", {"id": 4242, "slug": "line-a", "platform_id": 13, "name": "A"})
    token = str(_admin(cloud_url, "tokens", {"username": "me@example.com"})["token"])
    devices = _admin(cloud_url, "devices", {"sku": "BRN404", "count": 3})["devices"]
    assert isinstance(devices, list)
    ids = [devices[0]["id"], devices[1]["id"].upper(), devices[2]["serial_number"]]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join([*ids, "NOT-A-DEVICE"]) + "\n")
    home = tmp_path / "home"
    home.mkdir()

    done = _particle(
        home, cloud_url, token, "product", "device", "add", "4242", "--file", str(ids_file)
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Success!" in out and "Product 4242 Includes:" in out
    for identifier in ids:
        assert identifier in out
    assert "Skipped Invalid IDs:" in out and "NOT-A-DEVICE" in out

    state = httpx.get(f"{cloud_url}/_emulator/state", timeout=5).json()
    assert sorted(d["product_id"] for d in state["devices"]) == [4242, 4242, 4242]
    assert state["counters"]["by_route"] == {"POST /v1/products/{product}/devices": 1}

    # the product list and the claim go through the same profile
    listed = _particle(home, cloud_url, token, "product", "device", "list", "line-a")
    assert listed.returncode == 0 and devices[0]["id"] in listed.stdout
    claimed = _particle(home, cloud_url, token, "device", "add", devices[0]["id"])
    assert claimed.returncode == 0 and "Successfully claimed" in claimed.stdout


@pytest.mark.skipif(not API_JS.exists(), reason=f"particle-api-js not installed in {CLI_DIR}")
def test_particle_api_js_import_groups_rename_claim_list(cloud_url: str) -> None:
    _admin(cloud_url, "products", {"id": 77, "slug": "js", "platform_id": 23, "name": "JS"})
    token = str(_admin(cloud_url, "tokens", {"username": "a@example.com"})["token"])
    other = str(_admin(cloud_url, "tokens", {"username": "b@example.com"})["token"])
    devices = _admin(cloud_url, "devices", {"sku": "B404", "count": 3})["devices"]
    assert isinstance(devices, list)
    ids = ",".join([devices[0]["id"], devices[1]["id"], devices[2]["serial_number"]])
    env = {
        **os.environ,
        "NODE_PATH": str(CLI_DIR / "node_modules"),
        "TOKEN": token,
        "OTHER_TOKEN": other,
        "PRODUCT": "js",
        "IDS": ids,
    }
    done = subprocess.run(
        ["node", str(ROOT / "scripts" / "particle-api-js-check.js"), cloud_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all ok" in done.stdout

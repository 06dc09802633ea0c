"""The local cloud against Particle's own clients: the ``particle`` CLI and particle-api-js.

An emulator is only as good as its agreement with real clients. These tests run
``trayline cloud serve``, point a throw-away HOME's particle profile at it
(``~/.particle/particle.config.json`` with ``apiUrl`` and ``access_token``), and
run the unmodified npm packages against it.

They need node and the packages pinned in ``.ci/particle-clients`` and installed
by ``scripts/install-particle-clients.sh`` (into the git-ignored
``build/particle-cli``, or the folder named by ``TRAYLINE_PARTICLE_CLI_DIR``).
Without them they are skipped with the reason, unless
``TRAYLINE_REQUIRE_REAL_CLIENTS=1`` (``.ci/run`` sets it): then a missing client
is a failure, so CI can never pass without checking the local cloud against
Particle's own code.
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

import httpx2
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI_DIR = Path(os.environ.get("TRAYLINE_PARTICLE_CLI_DIR", ROOT / "build" / "particle-cli"))
PARTICLE = CLI_DIR / "node_modules" / ".bin" / "particle"
API_JS = CLI_DIR / "node_modules" / "particle-api-js"

REQUIRE_REAL_CLIENTS = os.environ.get("TRAYLINE_REQUIRE_REAL_CLIENTS") == "1"

pytestmark = pytest.mark.slow


def _missing(*needed: Path) -> str | None:
    """Why the real clients cannot run here, or ``None`` when they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    for path in needed:
        if not path.exists():
            return f"{path} is missing: run scripts/install-particle-clients.sh"
    return None


def _require(*needed: Path) -> None:
    """Skip without the clients, or fail under ``TRAYLINE_REQUIRE_REAL_CLIENTS=1``."""
    reason = _missing(*needed)
    if reason is None:
        return
    if REQUIRE_REAL_CLIENTS:
        pytest.fail(f"{reason} (TRAYLINE_REQUIRE_REAL_CLIENTS=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def particle_cli() -> Path:
    """The ``particle`` executable (requested before ``cloud_url``: no server for a skip)."""
    _require(PARTICLE)
    return PARTICLE


@pytest.fixture
def api_js() -> Path:
    _require(API_JS)
    return API_JS


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
    response = httpx2.post(f"{url}/_emulator/{path}", json=body, timeout=5)
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


def test_particle_cli_product_device_add_file(
    particle_cli: Path, cloud_url: str, tmp_path: Path
) -> None:
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

    state = httpx2.get(f"{cloud_url}/_emulator/state", timeout=5).json()
    assert sorted(d["product_id"] for d in state["devices"]) == [4242, 4242, 4242]
    assert state["counters"]["by_route"] == {"POST /v1/products/{product}/devices": 1}

    # the product list and the claim go through the same profile
    listed = _particle(home, cloud_url, token, "product", "device", "list", "line-a")
    assert listed.returncode == 0 and devices[0]["id"] in listed.stdout
    claimed = _particle(home, cloud_url, token, "device", "add", devices[0]["id"])
    assert claimed.returncode == 0 and "Successfully claimed" in claimed.stdout


def test_particle_api_js_import_groups_rename_claim_list(api_js: Path, cloud_url: str) -> None:
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

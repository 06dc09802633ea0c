"""Signed manifests: export at the CM, import at the customer, provision from it.

The CM's store runs a real (fake-board) line on SQLite and PostgreSQL; the
customer's store is a separate SQLite file that trusts the CM's public key.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from outboxkit import build_line, fingerprint
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.core.ids import luhn_check_digit
from trayline.outbox.canonical import canonical
from trayline.outbox.importing import import_manifest_file
from trayline.outbox.manifest import ManifestRefused
from trayline.outbox.signing import load_private_key
from trayline.particle.emulator import EmulatorConfig, create_app, serve_in_background
from trayline.particle.emulator.factory import FactoryUnit
from trayline.store.db import Store, open_store
from trayline.store.units import (
    EventContext,
    find_unit,
    identify,
    register_unit,
    unit_attempts,
)

cli = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.output


def _cm(tmp_path: Path, db_url: str) -> tuple[Store, Path, Path, list[str]]:
    """A CM store with 3 ready units in batch carton-1 (and a failed one), a key pair."""
    store = open_store(db_url)
    built = build_line(store, tmp_path)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    code, output = _run("export", "close-batch", "carton-1", "--since", since, "--db", db_url)
    assert code == 0, output
    assert "3 unit(s)" in output
    code, output = _run("keys", "create", "--name", "cm-test", "--dir", str(tmp_path / "keys"))
    assert code == 0, output
    key = tmp_path / "keys" / "cm-test.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    manifest = tmp_path / "carton-1.json"
    code, output = _run(
        "export", "manifest", "--batch", "carton-1", "--key", str(key),
        "--out", str(manifest), "--db", db_url,
    )  # fmt: skip
    assert code == 0, output
    return store, key, manifest, built.ready


def _customer(tmp_path: Path, pub: Path) -> str:
    url = f"sqlite:///{tmp_path / 'customer.db'}"
    code, output = _run("keys", "trust", str(pub), "--db", url)
    assert code == 0 and "trusted key" in output, output
    return url


def _factory_unit(serial: str, device_id: str, n: int) -> FactoryUnit:
    iccid = f"8901{n:014d}"
    imei = f"35{n:012d}"
    return FactoryUnit(
        device_id, serial, iccid + luhn_check_digit(iccid), imei + luhn_check_digit(imei),
        "SECRET", 13, "BRN404", True,
    )  # fmt: skip


def test_round_trip_export_import_provision(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cm_store, key, manifest, ready = _cm(tmp_path, db_url)
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    body = doc["manifest"]
    assert body["count"] == 3 and len(body["units"]) == 3 and body["batch"] == "carton-1"
    assert body["stations"] == ["st1"] and doc["signature"]["key_id"] == body["key_id"]
    assert sorted(u["serial_number"] for u in body["units"]) == sorted(ready)
    first = body["units"][0]
    assert first["test"]["verdict"] == "pass"
    assert first["test"]["measurements"][0]["name"] == "vbat"
    assert first["test"]["measurements"][0]["low"] == 3.6
    assert first["firmware"]["production"]["digest"]
    assert {p["name"] for p in first["parts"]} == {"battery", "enclosure"}
    assert manifest.read_bytes() == canonical(doc) + b"\n"  # the file is the canonical form
    text = manifest.read_text(encoding="utf-8").lower()
    assert "secret" not in text and "token" not in text
    cm_store.dispose()

    url = _customer(tmp_path, key.with_suffix(".pub"))
    code, output = _run("import", "manifest", str(manifest), "--db", url)
    assert code == 0 and "imported 3 ready unit(s) batch carton-1" in output, output
    customer = open_store(url)
    for serial in ready:
        unit = find_unit(customer, serial)
        assert unit is not None and unit.status == "ready" and unit.device_id
        assert dict(unit.parts)["battery"].startswith("BAT-")
        assert unit.firmware["production"]["digest"]
        attempts = unit_attempts(customer, unit.id)
        assert attempts[-1].outcome == "pass" and attempts[-1].measurements[0]["verdict"] == "pass"
    devices = {u: find_unit(customer, u).device_id for u in ready}  # type: ignore[union-attr]
    customer.dispose()

    cloud_app = create_app(EmulatorConfig(seed=1))
    cloud_app.cloud.add_product(31337, "line-product", platform_id=13)
    token = cloud_app.cloud.add_token("engineer@example.com")
    cloud_app.cloud.add_units(
        [_factory_unit(s, d or "", n) for n, (s, d) in enumerate(devices.items(), start=1)]
    )
    with serve_in_background(cloud_app) as api:
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", token)
        monkeypatch.setenv("PARTICLE_API_URL", api)
        monkeypatch.chdir(tmp_path)
        code, output = _run(
            "provision", "run", "--from-line", "-c", str(tmp_path / "trayline.toml"), "--db", url
        )
        assert code == 0, output
    customer = open_store(url)
    for serial in ready:
        unit = find_unit(customer, serial)
        assert unit is not None and unit.cloud is not None and unit.cloud["state"] == "provisioned"
        assert cloud_app.cloud.find_device(unit.device_id or "") is not None
    customer.dispose()


REASONS: list[str] = []


def _assert_refused(url: str, path: Path, words: str) -> None:
    with open_store(url) as customer:
        before = fingerprint(customer)
        code, output = _run("import", "manifest", str(path), "--db", url)
        assert code == 2, output
        assert "refused" in output and words in output, output
        assert "nothing imported" in output and "Traceback" not in output
        REASONS.append(output)
        assert fingerprint(customer) == before


@dataclass
class Cm:
    url: str
    key: Path
    manifest: Path
    ready: list[str]


@pytest.fixture(scope="module")
def cm(tmp_path_factory: pytest.TempPathFactory) -> Cm:
    """One CM line (SQLite) with its key and manifest, shared by the refusal tests."""
    folder = tmp_path_factory.mktemp("cm")
    url = f"sqlite:///{folder / 'cm.db'}"
    store, key, manifest, ready = _cm(folder, url)
    store.dispose()
    return Cm(url, key, manifest, ready)


def test_refusals_write_nothing(tmp_path: Path, cm: Cm) -> None:
    key, manifest = cm.key, cm.manifest
    url = _customer(tmp_path, key.with_suffix(".pub"))
    data = manifest.read_bytes()
    bad = tmp_path / "bad.json"

    # one changed byte anywhere (header, body, units, signature, final newline), then
    # truncations: checked through the service on one open store, a few through the CLI
    positions = sorted({0, 5, 20, 60, 100, len(data) // 3, len(data) // 2, len(data) - 40,
                        len(data) - 10, len(data) - 3, len(data) - 2, len(data) - 1})  # fmt: skip
    variants = []
    for pos in positions:
        for delta in (1, 0x20):
            changed = bytearray(data)
            changed[pos] = (changed[pos] + delta) % 256 or 1
            variants.append(bytes(changed))
    variants += [data[:-cut] for cut in (1, 2, len(data) // 2, len(data) - 200)]
    with open_store(url) as customer:
        before = fingerprint(customer)
        for variant in variants:
            bad.write_bytes(variant)
            with pytest.raises(ManifestRefused):
                import_manifest_file(customer, bad)
            assert fingerprint(customer) == before
    for variant in (variants[0], variants[len(variants) // 2], variants[-1]):
        bad.write_bytes(variant)
        _assert_refused(url, bad, "")

    doc = json.loads(data)
    doc["manifest"]["units"].pop()
    bad.write_bytes(canonical(doc) + b"\n")
    _assert_refused(url, bad, "does not verify")
    doc["manifest"]["count"] -= 1
    bad.write_bytes(canonical(doc) + b"\n")
    _assert_refused(url, bad, "does not verify")

    # re-signed by a key the customer never trusted
    code, output = _run("keys", "create", "--name", "mallory", "--dir", str(tmp_path / "evil"))
    assert code == 0, output
    evil = load_private_key(tmp_path / "evil" / "mallory.key")
    doc = json.loads(data)
    doc["manifest"]["key_id"] = evil.key_id
    doc["signature"] = {
        "algorithm": "ed25519",
        "key_id": evil.key_id,
        "value": evil.sign(canonical(doc["manifest"])).hex(),
    }
    bad.write_bytes(canonical(doc) + b"\n")
    _assert_refused(url, bad, "does not trust")

    # the untouched manifest still imports; a second import is a no-op that says so
    code, output = _run("import", "manifest", str(manifest), "--db", url)
    assert code == 0 and "imported 3" in output, output
    with open_store(url) as customer:
        before = fingerprint(customer)
        code, output = _run("import", "manifest", str(manifest), "--db", url)
        assert code == 0 and "imported already" in output and "nothing changed" in output, output
        assert fingerprint(customer) == before


def test_unit_known_with_another_device_is_refused(tmp_path: Path, cm: Cm) -> None:
    key, manifest, ready = cm.key, cm.manifest, cm.ready
    url = _customer(tmp_path, key.with_suffix(".pub"))
    with open_store(url) as customer:
        unit, _ = register_unit(customer, ready[1], sku="BRN404", ctx=EventContext("recv"))
        identify(customer, unit.id, "e00fce68ffffffffffffffff", ctx=EventContext("recv"))
    _assert_refused(url, manifest, "e00fce68ffffffffffffffff")


def test_private_key_readable_by_others_is_refused(tmp_path: Path, cm: Cm) -> None:
    key = cm.key
    key.chmod(0o644)
    out = tmp_path / "second.json"
    try:
        code, output = _run(
            "export", "manifest", "--batch", "carton-1", "--key", str(key), "--out", str(out),
            "--db", cm.url,
        )  # fmt: skip
    finally:
        key.chmod(0o600)
    assert code == 2, output
    assert str(key) in output.replace("\n", "") and "0644" in output
    assert not out.exists()


def test_nothing_to_ship_writes_no_manifest(tmp_path: Path, cm: Cm) -> None:
    out = tmp_path / "empty.json"
    code, output = _run(
        "export", "manifest", "--batch", "carton-404", "--key", str(cm.key), "--out", str(out),
        "--db", cm.url,
    )  # fmt: skip
    assert code == 2 and "nothing to ship" in output, output
    assert not out.exists()


def test_refusal_reasons_read_as_one_line(cm: Cm, tmp_path: Path) -> None:
    """A sample of what people see (printed with -s), each one line naming the file."""
    url = _customer(tmp_path, cm.key.with_suffix(".pub"))
    data = cm.manifest.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_bytes(data.replace(b'"count":3', b'"count":4'))
    _assert_refused(url, bad, "does not verify")
    bad.write_bytes(data[:-1] + b" ")
    _assert_refused(url, bad, "truncated")
    bad.write_bytes(data[: len(data) // 2])
    _assert_refused(url, bad, "truncated")
    for line in REASONS[-3:]:
        print(line.strip())
        assert line.replace("\n", " ").strip().startswith("error: ")
        assert str(bad) in line.replace("\n", "")


def test_import_on_each_backend(cm: Cm, db_url: str, tmp_path: Path) -> None:
    """The customer's store on SQLite and PostgreSQL: import, no-op repeat, conflict refused."""
    code, output = _run("keys", "trust", str(cm.key.with_suffix(".pub")), "--db", db_url)
    assert code == 0, output
    code, output = _run("import", "manifest", str(cm.manifest), "--db", db_url)
    assert code == 0 and "imported 3" in output, output
    with open_store(db_url) as customer:
        before = fingerprint(customer)
        code, output = _run("import", "manifest", str(cm.manifest), "--db", db_url)
        assert code == 0 and "imported already" in output, output
        assert fingerprint(customer) == before
        unit = find_unit(customer, cm.ready[0])
        assert unit is not None and unit.status == "ready"
    # another CM manifest naming one of these serials with another device: refused whole
    doc = json.loads(cm.manifest.read_bytes())
    body = doc["manifest"]
    body["manifest_id"] = "0" * 32
    body["units"][0]["device_id"] = "e00fce68eeeeeeeeeeeeeeee"
    key = load_private_key(cm.key)
    doc["signature"]["value"] = key.sign(canonical(body)).hex()
    other = tmp_path / "other.json"
    other.write_bytes(canonical(doc) + b"\n")
    _assert_refused(db_url, other, "e00fce68eeeeeeeeeeeeeeee")

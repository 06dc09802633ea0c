"""Shipment manifests: what the CM signs, and the checks the customer makes before trusting it.

A manifest file is one line of canonical JSON (:mod:`trayline.outbox.canonical`)
and a newline::

    {"format":"trayline.manifest/1",
     "manifest":{"manifest_id":…, "site":…, "key_id":…, "created_at":…, "batch":…,
                 "since":…, "stations":[…], "count":N, "units":[…]},
     "signature":{"algorithm":"ed25519","key_id":…,"value":<128 lowercase hex>}}

The signature is Ed25519 over the canonical bytes of ``manifest``. The
checks (:func:`check_manifest`) run in an order that gives the most useful
reason first, and every one must pass before anything is written: the file is
complete JSON in canonical form (so *any* changed byte is caught, including in
whitespace or the signature's spelling), the signing key is trusted, the
signature verifies, ``count`` matches the units, and every unit's identifiers
are well formed and unique. All of it is pure: bytes and keys in, a
:class:`CheckedManifest` or a :class:`ManifestRefused` out.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trayline.core.ids import DeviceId, Iccid, InvalidIdentifier, SerialNumber
from trayline.outbox.canonical import DuplicateKey, canonical, strict_loads
from trayline.outbox.signing import SiteKey, verify

__all__ = [
    "FORMAT",
    "CheckedManifest",
    "ManifestRefused",
    "build_manifest",
    "check_manifest",
]

FORMAT = "trayline.manifest/1"
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{128}")
_BODY_KEYS = frozenset(
    {"manifest_id", "site", "key_id", "created_at", "batch", "since", "stations", "count", "units"}
)
_UNIT_KEYS = frozenset(
    {
        "serial_number",
        "device_id",
        "sku",
        "iccid",
        "imei",
        "batch",
        "station",
        "slot",
        "ready_at",
        "parts",
        "test",
        "firmware",
    }
)


class ManifestRefused(Exception):
    """The manifest cannot be trusted or used; the message is the one-line reason."""


@dataclass(frozen=True, slots=True)
class CheckedManifest:
    """A manifest whose signature verified against a trusted key and whose units are sound."""

    manifest_id: str
    site: str
    key_id: str
    batch: str | None
    created_at: str
    stations: tuple[str, ...]
    units: tuple[dict[str, Any], ...]
    body_sha256: str


def build_manifest(
    key: SiteKey,
    *,
    site: str,
    units: Sequence[Mapping[str, Any]],
    batch: str | None,
    since: datetime | None,
    now: datetime,
) -> bytes:
    """The signed manifest file's bytes for ``units`` (entries of :func:`manifest_units`)."""
    body = {
        "manifest_id": uuid.uuid4().hex,
        "site": site,
        "key_id": key.key_id,
        "created_at": now.isoformat(),
        "batch": batch,
        "since": since.isoformat() if since else None,
        "stations": sorted({str(u["station"]) for u in units if u.get("station")}),
        "count": len(units),
        "units": [dict(u) for u in units],
    }
    signed = canonical(body)
    envelope = {
        "format": FORMAT,
        "manifest": body,
        "signature": {
            "algorithm": "ed25519",
            "key_id": key.key_id,
            "value": key.sign(signed).hex(),
        },
    }
    return canonical(envelope) + b"\n"


def _parse(data: bytes) -> dict[str, Any]:
    if not data.endswith(b"\n"):
        raise ManifestRefused(
            "the file is truncated or its end was changed (a manifest ends with a newline)"
        )
    try:
        envelope = strict_loads(data[:-1])
    except UnicodeDecodeError:
        raise ManifestRefused(
            "the file is not UTF-8 text: it was damaged or is not a manifest"
        ) from None
    except DuplicateKey as exc:
        raise ManifestRefused(f"the file is not a valid manifest: {exc}") from None
    except ValueError as exc:
        raise ManifestRefused(
            f"the file is not complete JSON (truncated or edited): {str(exc)[:80]}"
        ) from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise ManifestRefused(f"not a trayline manifest (expected format {FORMAT!r})")
    if canonical(envelope) + b"\n" != data:
        raise ManifestRefused(
            "the file was changed after signing (it is not in the canonical form trayline writes)"
        )
    if set(envelope) != {"format", "manifest", "signature"}:
        raise ManifestRefused("the manifest has unexpected or missing top-level fields")
    return envelope


def _signature(envelope: Mapping[str, Any]) -> tuple[str, bytes]:
    sig = envelope["signature"]
    if not isinstance(sig, dict) or sig.get("algorithm") != "ed25519":
        raise ManifestRefused("the signature is missing or not ed25519")
    key_id, value = sig.get("key_id"), sig.get("value")
    if not isinstance(key_id, str) or not isinstance(value, str):
        raise ManifestRefused("the signature has no key_id or value")
    if not _HEX_SIGNATURE.fullmatch(value):
        raise ManifestRefused("the signature value is not 128 lowercase hex digits")
    return key_id, bytes.fromhex(value)


def _check_unit(n: int, unit: Any, seen: dict[str, set[str]]) -> dict[str, Any]:
    where = f"unit {n}"
    if not isinstance(unit, dict) or not set(unit) >= _UNIT_KEYS:
        raise ManifestRefused(f"{where}: missing fields (expected {', '.join(sorted(_UNIT_KEYS))})")
    try:
        serial = SerialNumber.parse(unit["serial_number"])
        device = DeviceId.parse(unit["device_id"])
        if unit["iccid"] is not None:
            Iccid.parse(unit["iccid"])
    except InvalidIdentifier as exc:
        raise ManifestRefused(f"{where}: {exc}") from None
    for kind, value in (("serial number", str(serial)), ("device ID", str(device))):
        if value in seen[kind]:
            raise ManifestRefused(f"{where}: {kind} {value} appears twice in the manifest")
        seen[kind].add(value)
    test = unit["test"]
    if not isinstance(test, dict) or test.get("verdict") != "pass":
        raise ManifestRefused(f"{where} ({serial}): no passing test verdict")
    if not isinstance(unit["parts"], list) or not isinstance(unit["firmware"], dict):
        raise ManifestRefused(f"{where} ({serial}): parts or firmware malformed")
    return {**unit, "serial_number": str(serial), "device_id": str(device)}


def check_manifest(data: bytes, trusted: Mapping[str, str]) -> CheckedManifest:
    """Verify a manifest file's bytes against ``trusted`` (key id → raw public key hex)."""
    envelope = _parse(data)
    key_id, signature = _signature(envelope)
    body = envelope["manifest"]
    if not isinstance(body, dict):
        raise ManifestRefused("the manifest body is not an object")
    public = trusted.get(key_id)
    if public is None:
        raise ManifestRefused(
            f"signed by key {key_id}, which this store does not trust "
            "(trayline keys trust FILE, after checking the key id with the CM)"
        )
    signed = canonical(body)
    if not verify(public, signature, signed):
        raise ManifestRefused(
            f"the signature does not verify with key {key_id}: the file was edited"
        )
    if set(body) != _BODY_KEYS or body["key_id"] != key_id:
        raise ManifestRefused("the signed body's fields are not those of a trayline manifest")
    units = body["units"]
    if not isinstance(units, list) or body["count"] != len(units):
        raise ManifestRefused(f"count says {body['count']} units, the manifest lists {len(units)}")
    seen: dict[str, set[str]] = {"serial number": set(), "device ID": set()}
    checked = tuple(_check_unit(n, u, seen) for n, u in enumerate(units, start=1))
    return CheckedManifest(
        manifest_id=str(body["manifest_id"]),
        site=str(body["site"]),
        key_id=key_id,
        batch=body["batch"],
        created_at=str(body["created_at"]),
        stations=tuple(str(s) for s in body["stations"]),
        units=checked,
        body_sha256=hashlib.sha256(signed).hexdigest(),
    )

"""A fuzz of the local cloud's endpoints: no input makes it answer 500 (issue 7 §6).

Hypothesis sends random methods to every route template (and some unknown
paths) with random path values, queries and bodies: JSON of any shape and type,
lone surrogates as JSON escapes, invalid UTF-8 raw and percent-escaped, huge and
non-finite numbers, form and multipart bodies, good, bad and missing tokens.
Every answer must be below 500 and, when it is an error, JSON in one of the
spec's error shapes. The cloud keeps its state across examples (that is where a
stored bad value would bite), and afterwards a listing, the admin dump and a
state-file round trip must still work.

Bounded so it runs in seconds: 200 examples, small factory orders, faults reset
after every example (a fuzzed ``latency_ms`` of a minute would otherwise stall
the next one).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trayline.particle.emulator import EmulatorApp, EmulatorConfig, EmulatorState, create_app

PRODUCT = 4242
SLUG = "line-a"
TOKEN = "f" * 40
DEVICE_FIELDS = ["name", "notes", "development", "desired_firmware_version", "groups"]
ROUTES = [  # (method, template, the fields the route reads); routes that store text first
    ("PUT", "/v1/products/{p}/devices/{x}", DEVICE_FIELDS),
    ("POST", "/_emulator/tokens", ["username", "scopes", "api_user", "token"]),
    ("POST", "/v1/products/{p}/groups", ["name", "description", "color"]),
    ("POST", "/_emulator/products", ["id", "slug", "platform_id", "name", "device_limit"]),
    ("PUT", "/v1/products/{p}/groups/{x}", ["name", "description", "color"]),
    ("POST", "/v1/products/{p}/devices", ["id", "ids", "file", "import_sims", "claim_user"]),
    ("PUT", "/v1/products/{p}/devices", ["action", "devices", "metadata"]),
    ("POST", "/_emulator/devices", ["sku", "count", "product_id", "protected", "owner", "online"]),
    ("GET", "/v1/user", []),
    ("GET", "/v1/products", []),
    ("GET", "/v1/products/{p}", []),
    ("GET", "/v1/serial_numbers/{x}", []),
    ("GET", "/v1/products/{p}/devices", []),
    ("GET", "/v1/products/{p}/devices/{x}", []),
    ("DELETE", "/v1/products/{p}/devices/{x}", ["access_token"]),
    ("DELETE", "/v1/products/{p}/devices/{x}/owner", ["access_token"]),
    ("POST", "/v1/products/{p}/sims", ["sims", "file"]),
    ("GET", "/v1/products/{p}/sims", []),
    ("GET", "/v1/products/{p}/sims/{x}", []),
    ("PUT", "/v1/sims/{x}", ["action"]),
    ("DELETE", "/v1/sims/{x}", []),
    ("GET", "/v1/sims", []),
    ("GET", "/v1/products/{p}/groups", []),
    ("GET", "/v1/products/{p}/groups/{x}", []),
    ("DELETE", "/v1/products/{p}/groups/{x}", []),
    ("POST", "/v1/devices", ["id", "request_transfer"]),
    ("GET", "/v1/devices", []),
    ("DELETE", "/v1/devices/{x}", []),
    ("GET", "/v1/nothing/{x}", []),
    ("POST", "/_emulator/devices/{x}/online", ["online"]),
    ("POST", "/_emulator/faults", ["rate_limit", "latency_ms", "jitter_ms", "error_rate"]),
    ("GET", "/_emulator/state", []),
    ("POST", "/_emulator/reset", []),
    ("GET", "/_emulator/{x}", []),
]
FIELDS = [
    "id", "ids", "file", "name", "notes", "development", "desired_firmware_version", "groups",
    "action", "devices", "metadata", "sims", "description", "color", "claim_user",
    "request_transfer", "import_sims", "access_token", "slug", "platform_id", "device_limit",
    "protected", "username", "scopes", "api_user", "token", "sku", "count", "product_id",
    "owner", "online", "rate_limit", "latency_ms", "jitter_ms", "error_rate", "drop_rate",
]  # fmt: skip
QUERY_NAMES = [
    "page", "perPage", "per_page", "groups", "deviceId", "deviceName", "serialNumber",
    "sortAttr", "sortDir", "quarantined", "claim_user", "access_token", "iccid", "name",
]  # fmt: skip
NASTY_TEXT = ["x\ud800", "\udfff", "\ud83d", "", " ", "null", "NaN", "1e308", "-1", "0", "10000"]
NASTY_BYTES = [b"%FF", b"%ED%A0%80", b"%C3", b"%00", b"%2F", b"..", b"%25"]

texts = st.one_of(
    st.sampled_from(NASTY_TEXT), st.text(max_size=12), st.just("BRN404"), st.just("g-1")
)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 200_000, 2**63]),
)
surrogates = st.sampled_from(["x\ud800", "\udfff", "a\ud83db"])  # lone: not valid text
scalars = st.one_of(surrogates, texts, numbers, st.booleans(), st.none())
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS) | texts, inner, max_size=4),
    ),
    max_leaves=10,
)
values = st.one_of(scalars, nested)
json_bodies = st.dictionaries(st.sampled_from(FIELDS) | texts, values, max_size=6)
raw_pieces = st.one_of(
    st.binary(max_size=16), st.sampled_from(NASTY_BYTES), st.text(max_size=8).map(str.encode)
)
path_values = st.lists(raw_pieces, min_size=1, max_size=3).map(b"".join)


@st.composite
def requests(draw: st.DrawFn, known: list[str]) -> dict[str, Any]:
    """One random request: method, raw URL, headers, body."""
    method, template, route_fields = ROUTES[draw(st.integers(0, len(ROUTES) - 1))]
    if draw(st.integers(0, 9)) == 0:  # now and then, a method the route does not take
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    names = st.sampled_from(route_fields or FIELDS) | st.sampled_from(FIELDS) | texts
    product = draw(st.sampled_from([str(PRODUCT)] * 4 + [SLUG] * 3 + ["999", "%FF", "x"]))
    value = draw(st.sampled_from(known) if draw(st.integers(0, 3)) else path_values.map(_escape))
    path = template.replace("{p}", product).replace("{x}", value or "x")
    pairs = draw(st.lists(st.tuples(st.sampled_from(QUERY_NAMES), path_values), max_size=3))
    query = "&".join(f"{k}={_escape(v)}" for k, v in pairs)
    headers = {}
    auth = draw(st.sampled_from(["good"] * 6 + ["none", "bad"]))
    if auth != "none":
        headers["Authorization"] = "Bearer " + (TOKEN if auth == "good" else "nope")
    kind = draw(st.sampled_from(["json"] * 5 + ["raw", "form", "form", "multipart", "none"]))
    body: dict[str, Any] = {}
    if kind == "json":
        own = st.dictionaries(st.sampled_from(route_fields or FIELDS), values, min_size=1)
        data = draw(st.one_of(own, own, st.dictionaries(names, values, max_size=5), values))
        body["content"] = json.dumps(data, ensure_ascii=True).encode()  # surrogates as \\udxxx
        headers["Content-Type"] = "application/json"
    elif kind == "raw":
        body["content"] = draw(st.binary(max_size=64))
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/plain", ""]))
    elif kind == "form":
        form = draw(st.lists(st.tuples(names, path_values), max_size=5))
        body["content"] = "&".join(
            f"{_escape(k.encode('utf-8', 'surrogatepass'))}={_escape(v)}" for k, v in form
        ).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif kind == "multipart":
        body["files"] = {
            "file": ("devices.txt", draw(st.binary(max_size=64)) + b"\n" + value.encode())
        }
        body["data"] = {draw(st.sampled_from(FIELDS)): draw(st.text(max_size=8))}
    return {
        "method": method,
        "url": path + ("?" + query if query else ""),
        "headers": headers,
        **body,
    }


def _escape(raw: bytes) -> str:
    """Bytes for a URL: printable ASCII as is (so %FF stays an escape), the rest %-escaped."""
    text = raw.decode("latin-1")
    if all(32 < ord(c) < 127 and c not in "#?&/ " for c in text):
        return text
    return quote_from_bytes(raw, safe="%")


def _replay(method: str, url: str, content: bytes) -> dict[str, Any]:
    """One of issue 7's attacks, as a request the fuzz always includes."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return {"method": method, "url": url, "headers": headers, "content": content}


def _setup(app: EmulatorApp) -> None:
    """Make sure the product and token exist (a fuzzed reset may have removed them)."""
    if PRODUCT not in app.cloud.products:
        app.cloud.add_product(PRODUCT, SLUG, platform_id=13)
    if TOKEN not in app.cloud.tokens:
        app.cloud.add_token("me@example.com", token=TOKEN)
    app.apply_faults(rate_limit=None, latency_ms=0, jitter_ms=0, error_rate=0, drop_rate=0)


async def _send(app: EmulatorApp, request: dict[str, Any]) -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://cloud") as http:
        return await http.request(**request)


def _assert_shaped(r: httpx2.Response, request: dict[str, Any]) -> None:
    assert r.status_code < 500, (r.status_code, r.text, request)
    if r.status_code >= 400:
        body = r.json()
        assert isinstance(body, dict), (r.text, request)
        assert "error" in body or "errors" in body, (r.text, request)


def test_fuzzed_requests_never_answer_500_and_listings_survive(tmp_path: Path) -> None:
    app = create_app(EmulatorConfig(seed=5, max_devices_per_request=20, max_body_bytes=64_000))
    _setup(app)
    made = app.cloud.make_devices("BRN404", 3, product_id=PRODUCT)
    known = [made[0].id, made[0].id, made[1].id, made[1].serial_number, made[2].iccid, "grp"]

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(requests(known))
    @example(_replay("PUT", f"/v1/products/{PRODUCT}/devices/{made[0].id}", b'{"name":"x\\ud800"}'))
    @example(_replay("POST", "/_emulator/tokens", b'{"username":"\\udfff"}'))
    @example(_replay("POST", f"/v1/products/{PRODUCT}/devices", b'{"id":"' + b"x" * 70_000 + b'"}'))
    @example(_replay("PUT", f"/v1/products/{PRODUCT}/devices/{made[0].id}", b'{"name":["a"]}'))
    @example(_replay("POST", "/_emulator/products", b'{"id":9,"slug":"line-a"}'))
    @example(_replay("POST", "/_emulator/faults", b'{"latency_ms":1e308}'))
    @example(_replay("POST", "/_emulator/devices", b'{"sku":"BRN404","count":200000}'))
    def one(request: dict[str, Any]) -> None:
        _setup(app)
        r = asyncio.run(_send(app, request))
        _assert_shaped(r, request)
        stored = {**app.cloud.snapshot(), "tokens": [t.username for t in app.cloud.tokens.values()]}
        json.dumps(stored, ensure_ascii=False, allow_nan=False).encode("utf-8")  # only valid text

    one()
    _setup(app)
    listing = asyncio.run(
        _send(
            app,
            {
                "method": "GET",
                "url": f"/v1/products/{PRODUCT}/devices?perPage=1000",
                "headers": {"Authorization": f"Bearer {TOKEN}"},
            },
        )
    )
    assert listing.status_code == 200
    assert isinstance(listing.json()["devices"], list)
    dump = asyncio.run(_send(app, {"method": "GET", "url": "/_emulator/state"}))
    assert dump.status_code == 200
    path = tmp_path / "cloud.json"
    app.cloud.save(path)
    again = EmulatorState.load(path)
    assert again.load_problems == []
    assert again.devices.keys() == app.cloud.devices.keys()

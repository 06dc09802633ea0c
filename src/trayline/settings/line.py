"""``trayline.toml``: the line's configuration, one typed schema, errors that name key and line.

A line is one product built at one site: which SKU, which test and production
bundles, which parts the operator scans (and what their barcodes look like),
the test plan, how passing units are provisioned, and which slots (probes) the
station drives. The file is read once with :mod:`tomllib`, checked completely,
and handed out as frozen dataclasses; nothing is half-applied.

Every problem names the file, the line and the key (``trayline.toml:14:
parts[2].pattern: not a regular expression: ...``). tomllib gives no line
numbers for values, so :func:`locate_key` scans the text for the table header
and the key — good enough for the flat tables and arrays of tables this schema
uses.

The site matters: LTE Cat M1 SKUs cannot attach to cellular at a contract
manufacturer in China (the guide, "SIM Activation" and "Programming"), so such a
line gets the guide's warning and the cloud connectivity step of the test plan
is skipped (``LineConfig.connectivity_skipped``).

The test plan is embedded as a raw table: its schema belongs to
``trayline.station.testplan``, which validates it with the same key paths.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trayline.core.ids import GroupName, InvalidIdentifier, ProductRef
from trayline.core.skus import Sku, UnknownSku, get_sku

__all__ = [
    "BACKENDS_HINT",
    "Bundles",
    "ConfigError",
    "LineConfig",
    "PartSpec",
    "ProvisioningPolicy",
    "Site",
    "SlotSpec",
    "format_group",
    "load_line_config",
    "locate_key",
    "parse_line_config",
]

Key = tuple[str | int, ...]
BACKENDS_HINT = "virtual, openocd, nrfjprog, jlink, pyocd, particle-cli, daplink, stm32, usb"
DEFAULT_GROUP = "{date:%Y%m%d}_{count:04d}"
CHINA = {"CN", "CHN", "CHINA"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CLAIM_MODES = ("none", "import", "each")
_KEY_LINE = re.compile(r'"?([A-Za-z0-9_-]+)"?\s*=')


class ConfigError(ValueError):
    """``trayline.toml`` is not valid; ``problems`` holds one ``file:line: key: why`` per fault."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Site:
    country: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Bundles:
    test: str
    production: str


@dataclass(frozen=True, slots=True)
class PartSpec:
    """A part the operator scans after the sticker: its barcode must match ``pattern``."""

    name: str
    pattern: re.Pattern[str]
    required: bool = True
    unique: bool = True


@dataclass(frozen=True, slots=True)
class ProvisioningPolicy:
    group: str = DEFAULT_GROUP
    naming: bool = True
    claim: str = "none"
    claim_user: str | None = None


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One fixture position: the programmer backend and the probe/port wired to it.

    ``probe`` empty means "whatever device is placed here" (the virtual line:
    the device ID of the unit placed in the slot is its probe ID).
    """

    name: str
    backend: str
    probe: str | None = None
    port: str | None = None
    allow_unlock: bool = False


@dataclass(frozen=True, slots=True)
class LineConfig:
    path: str
    product: ProductRef
    sku: Sku
    station: str
    site: Site
    bundles: Bundles
    parts: tuple[PartSpec, ...]
    test_plan: dict[str, Any]
    provisioning: ProvisioningPolicy
    slots: tuple[SlotSpec, ...]
    retest_limit: int = 2
    warnings: tuple[str, ...] = field(default=())
    label: dict[str, Any] = field(default_factory=dict)
    """``[label]`` as written (schema: :mod:`trayline.station.labels`); empty = no labels."""

    @property
    def connectivity_skipped(self) -> bool:
        """Cat M1 at a CM in China cannot attach: test in manual mode, skip the cloud check."""
        return self.sku.lte_cat_m1 and self.site.country.upper() in CHINA


def format_group(pattern: str, *, when: datetime, count: int) -> GroupName:
    """Fill a group pattern (``{date:%Y%m%d}_{count:04d}``) and check the result is a group name."""
    try:
        text = pattern.format(date=when, count=count)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"cannot fill group pattern {pattern!r}: {exc}") from None
    return GroupName.parse(text.lower())


def locate_key(text: str, key: Key) -> int | None:
    """The 1-based line where ``key`` (e.g. ``("parts", 1, "pattern")``) is written, if found.

    Tracks table headers (``[a.b]``, ``[[a]]`` with an occurrence count) while
    scanning, then looks for ``name =`` inside the wanted table. Falls back to
    the table's header line, or None.
    """
    last = key[-1] if key and isinstance(key[-1], str) else None
    want = list(key[:-1]) if last is not None else list(key)
    table: list[str | int] = []
    counts: dict[str, int] = {}
    header: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[[") and "]]" in line:
            name = line[2 : line.index("]]")].strip()
            counts[name] = counts.get(name, -1) + 1
            table = [*name.split("."), counts[name]]
        elif line.startswith("[") and "]" in line:
            table = [p.strip().strip('"') for p in line[1 : line.index("]")].split(".")]
        else:
            match = _KEY_LINE.match(line)
            if last is not None and table == want and match and match.group(1) == last:
                return number
            continue
        if header is None and table == (list(key) if last is None else want):
            header = number
        if last is not None and table == list(key):
            header = number
    return header


def _shown(key: Key) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _Reader:
    """Collects problems with their file:line instead of stopping at the first."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.problems: list[str] = []

    def problem(self, key: Key, message: str) -> None:
        line = locate_key(self.text, key)
        where = f"{self.path}:{line}" if line else self.path
        self.problems.append(f"{where}: {_shown(key)}: {message}")

    def table(self, data: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                self.problems.append(f"{self.path}: [{key}] table is missing")
            return {}
        if not isinstance(value, dict):
            self.problem((key,), "must be a table")
            return {}
        return value

    def get(self, data: dict[str, Any], key: Key, kind: type, default: Any = ...) -> Any:
        name = key[-1]
        assert isinstance(name, str)
        if name not in data:
            if default is ...:
                self.problem(key[:-1], f"missing key {name!r}")
            return None if default is ... else default
        value = data[name]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.problem(key, f"must be {kind.__name__}, got {type(value).__name__}")
            return None if default is ... else default
        return value

    def unknown(self, data: dict[str, Any], key: Key, known: set[str]) -> None:
        for name in data:
            if name not in known:
                self.problem((*key, name), f"unknown key (known: {', '.join(sorted(known))})")


_TOP_KEYS = {"line", "site", "bundles", "parts", "test_plan", "provisioning", "slots", "label"}
_LINE_KEYS = {"product", "sku", "station", "retest_limit"}


def _read_line(r: _Reader, data: dict[str, Any]) -> tuple[ProductRef | None, Sku | None, str, int]:
    table = r.table(data, "line")
    r.unknown(table, ("line",), _LINE_KEYS)
    product = sku = None
    raw_product = table.get("product")
    if isinstance(raw_product, int) and not isinstance(raw_product, bool):
        raw_product = str(raw_product)
    if raw_product is None:
        r.problem(("line",), "missing key 'product' (a product ID or slug)")
    else:
        try:
            product = ProductRef.parse(raw_product)
        except InvalidIdentifier as exc:
            r.problem(("line", "product"), str(exc))
    raw_sku = r.get(table, ("line", "sku"), str)
    if raw_sku is not None:
        try:
            sku = get_sku(raw_sku)
        except UnknownSku as exc:
            r.problem(("line", "sku"), str(exc))
    station = r.get(table, ("line", "station"), str, "station-1")
    if not _NAME.fullmatch(station):
        r.problem(("line", "station"), "letters, digits, '.', '_' or '-', up to 64")
    retest = r.get(table, ("line", "retest_limit"), int, 2)
    if not 0 <= retest <= 100:
        r.problem(("line", "retest_limit"), "must be between 0 and 100")
    return product, sku, station, retest


def _read_parts(r: _Reader, data: dict[str, Any]) -> tuple[PartSpec, ...]:
    raw = data.get("parts", [])
    if not isinstance(raw, list):
        r.problem(("parts",), "must be an array of tables ([[parts]])")
        return ()
    parts: list[PartSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            r.problem(("parts", i), "must be a table")
            continue
        r.unknown(item, ("parts", i), {"name", "pattern", "required", "unique"})
        name = r.get(item, ("parts", i, "name"), str)
        pattern = r.get(item, ("parts", i, "pattern"), str)
        if name is not None and not _NAME.fullmatch(name):
            r.problem(("parts", i, "name"), "letters, digits, '.', '_' or '-', up to 64")
        elif name is not None and name in seen:
            r.problem(("parts", i, "name"), f"part {name!r} is listed twice")
        compiled = None
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                r.problem(("parts", i, "pattern"), f"not a regular expression: {exc}")
        required = r.get(item, ("parts", i, "required"), bool, True)
        unique = r.get(item, ("parts", i, "unique"), bool, True)
        if name is not None and compiled is not None:
            seen.add(name)
            parts.append(PartSpec(name, compiled, required, unique))
    return tuple(parts)


def _read_slots(r: _Reader, data: dict[str, Any]) -> tuple[SlotSpec, ...]:
    table = r.table(data, "slots")
    slots: list[SlotSpec] = []
    for name, item in table.items():
        if not _NAME.fullmatch(name):
            r.problem(("slots", name), "slot names are letters, digits, '.', '_' or '-'")
            continue
        if not isinstance(item, dict):
            r.problem(("slots", name), "must be a table ([slots.NAME])")
            continue
        r.unknown(item, ("slots", name), {"backend", "probe", "port", "allow_unlock"})
        backend = r.get(item, ("slots", name, "backend"), str)
        probe = r.get(item, ("slots", name, "probe"), str, "") or None
        port = r.get(item, ("slots", name, "port"), str, "") or None
        unlock = r.get(item, ("slots", name, "allow_unlock"), bool, False)
        if backend is not None:
            slots.append(SlotSpec(name, backend, probe, port, unlock))
    if table and not slots and not r.problems:
        r.problem(("slots",), "no usable slot")
    if "slots" in data and not table:
        r.problem(("slots",), "define at least one [slots.NAME] with a backend")
    return tuple(slots)


def _read_policy(r: _Reader, data: dict[str, Any]) -> ProvisioningPolicy:
    table = r.table(data, "provisioning", required=False)
    r.unknown(table, ("provisioning",), {"group", "naming", "claim", "claim_user"})
    group = r.get(table, ("provisioning", "group"), str, DEFAULT_GROUP)
    try:
        format_group(group, when=datetime.now(UTC), count=1)
    except (ValueError, InvalidIdentifier) as exc:
        r.problem(("provisioning", "group"), str(exc))
    naming = r.get(table, ("provisioning", "naming"), bool, True)
    claim = r.get(table, ("provisioning", "claim"), str, "none")
    user = r.get(table, ("provisioning", "claim_user"), str, "") or None
    if claim not in CLAIM_MODES:
        r.problem(("provisioning", "claim"), f"must be one of {', '.join(CLAIM_MODES)}")
    elif claim == "import" and not user:
        r.problem(("provisioning", "claim_user"), "claim = 'import' needs a team member's email")
    return ProvisioningPolicy(group, naming, claim, user)


def parse_line_config(text: str, path: str = "trayline.toml") -> LineConfig:
    """Parse and check the whole file; raise :class:`ConfigError` with every problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    r = _Reader(path, text)
    r.unknown(data, (), _TOP_KEYS)
    product, sku, station, retest = _read_line(r, data)
    site_t = r.table(data, "site", required=False)
    r.unknown(site_t, ("site",), {"country", "name"})
    site = Site(
        r.get(site_t, ("site", "country"), str, "") or "", r.get(site_t, ("site", "name"), str, "")
    )
    bundles_t = r.table(data, "bundles")
    r.unknown(bundles_t, ("bundles",), {"test", "production"})
    test = r.get(bundles_t, ("bundles", "test"), str) if bundles_t else None
    production = r.get(bundles_t, ("bundles", "production"), str) if bundles_t else None
    parts = _read_parts(r, data)
    plan = r.table(data, "test_plan", required=False)
    policy = _read_policy(r, data)
    slots = _read_slots(r, data)
    if r.problems or product is None or sku is None or test is None or production is None:
        raise ConfigError(r.problems or [f"{path}: incomplete configuration"])
    label = r.table(data, "label", required=False)
    warnings = []
    if sku.lte_cat_m1 and site.country.upper() in CHINA:
        warnings.append(
            f"{sku.name} is LTE Cat M1: it cannot connect to cellular at a CM in "
            f"{site.country}; the test firmware should run in manual mode and the "
            "cloud connectivity step is skipped (guide: 'SIM Activation', 'Programming')"
        )
    return LineConfig(
        path,
        product,
        sku,
        station,
        site,
        Bundles(test, production),
        parts,
        plan,
        policy,
        slots,
        retest,
        tuple(warnings),
        label,
    )


def load_line_config(path: Path) -> LineConfig:
    """Read ``path``; an unreadable file is a :class:`ConfigError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    return parse_line_config(text, str(path))

"""How the local cloud behaves where Particle's behaviour is not confirmed.

shared/spec/particle-cloud-api.md marks several behaviours UNCONFIRMED: the
serial-lookup field name, which import bucket a device of another product lands
in, whether an API user may claim, what a duplicate group answers, and so on.
The emulator never hard-codes a guess: each one is a field here with the most
likely value as its default, so a test can flip it and prove that trayline's
client copes with either answer. docs/cloud.md lists every field.

Fault settings (rate limit, latency, errors, drops) start here and can be changed
while running through ``POST /_emulator/faults``; :mod:`.faults` holds their
maxima. The limits below (body size, factory order size) are the emulator's own:
Particle documents none, and without them one request could stall the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from trayline.core.ratelimits import RateLimit

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DEVICES_PER_REQUEST",
    "EmulatorConfig",
    "ImportBucket",
    "parse_rate_limit",
]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
"""4 MiB: a 100,000-line import file of serial numbers fits (1.6 MB), a runaway upload not."""
DEFAULT_MAX_DEVICES_PER_REQUEST = 10_000
"""Largest ``POST /_emulator/devices`` order: 200 trays of 50, made in chunks."""

ImportBucket = Literal["invalidDeviceIds", "nonmemberDeviceIds"]


def parse_rate_limit(text: str) -> tuple[int, float]:
    """``"10000/300"`` → ``(10000, 300.0)``: REQUESTS per SECONDS (``s``/``m``/``h`` allowed).

    The grammar is :class:`trayline.core.ratelimits.RateLimit`'s, the one parser
    every rate-limit option shares; a bad value raises its ``InvalidRateLimit``
    (a ``ValueError``).
    """
    limit = RateLimit.parse(text)
    return limit.requests, limit.seconds


@dataclass
class EmulatorConfig:
    """Every knob of the local cloud; the defaults mimic api.particle.io as best known."""

    # --- general rate limit (spec §9: 10,000 requests / 5 minutes per source IP) ---
    rate_limit: tuple[int, float] | None = None
    """(requests, seconds) sliding window per client address; ``None`` = unlimited."""
    retry_after_header: bool = True
    """Send ``Retry-After`` with 429 (UNCONFIRMED that Particle does)."""

    # --- serial lookup (spec §2) ---
    serial_lookup_limit: tuple[int, float] | None = (50, 3600.0)
    """Budget of ``GET /v1/serial_numbers/:sn`` per *user account*; ``None`` = unlimited."""
    legacy_serial_field: bool = False
    """Answer ``deviceID`` (apidoc example) instead of ``device_id`` (what live callers read)."""
    serial_lookup_status_not_found: int = 404
    """Status for an unknown serial (UNCONFIRMED; 403 is also plausible)."""
    api_users_may_lookup_serials: bool = True
    """Whether API users may call the serial lookup (UNCONFIRMED)."""

    # --- import (spec §3) ---
    other_product_bucket: ImportBucket = "invalidDeviceIds"
    """Where a device already in another product is reported (particle-cli saw invalid)."""
    platform_mismatch_bucket: ImportBucket = "invalidDeviceIds"
    """Where a device of the wrong platform is reported (UNCONFIRMED)."""

    # --- claim (spec §7) ---
    api_user_forbidden_status: int = 400
    """Status of ``{"error":"unauthorized",...}`` for API users on human-only endpoints.
    The docs call it "a standard 400"; UNCONFIRMED, 403 is the alternative."""

    # --- auth (spec §0.1) ---
    new_account: bool = False
    """Reject ``access_token`` in the query string and body (accounts made after Dec 2024)."""

    # --- groups (spec §5) ---
    uppercase_group_names: Literal["reject", "lowercase"] = "reject"
    """Whether ``MyGroup`` is refused (400) or silently lowercased (UNCONFIRMED)."""
    duplicate_group_status: int = 400
    duplicate_group_error: str = "Group already exists"
    batch_add_creates_groups: bool = True
    """Batch ``metadata.add`` with a group that does not exist: create it (True) or answer
    400 ``Group <name> not found`` (False). UNCONFIRMED; auto-create is the safer default
    because the per-device PUT is documented to create groups."""
    batch_unknown_devices: Literal["skip", "reject"] = "skip"
    """Batch ``devices`` that are not in the product: skipped, or a 400 for the whole call."""

    # --- listing ---
    max_per_page: int | None = None
    """Cap on ``perPage``/``per_page`` (UNCONFIRMED on the real API); ``None`` = no cap."""
    default_per_page: int = 25

    # --- device not found (spec §0.3: 403 Permission Denied, not 404) ---
    device_not_found_status: int = 403

    # --- faults (changeable at run time) ---
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    """Fraction of Particle requests answered with a random 500/502/503."""
    drop_rate: float = 0.0
    """Fraction of Particle requests whose connection is closed without a response."""
    seed: int | None = None
    """Seed for the fault dice and the device factory: the same seed, the same run."""

    # --- limits and the admin surface (the emulator's own, not Particle's) ---
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body; more is refused with 413 before the handler runs."""
    max_devices_per_request: int = DEFAULT_MAX_DEVICES_PER_REQUEST
    """Largest ``count`` of one ``POST /_emulator/devices``; more is a 400."""
    admin_token: str | None = field(default=None, repr=False)
    """When set, every ``/_emulator/*`` request needs ``Authorization: Bearer <it>``."""

    # --- persistence ---
    state_file: Path | None = None
    """Load from and save to this JSON file (written to a temp file, then renamed)."""
    save_interval_s: float = 1.0
    """Save at most this often while mutations happen; 0 = after every mutating request."""

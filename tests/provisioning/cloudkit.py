"""Helpers for provisioning tests: a local cloud with a Boron product, and clients for it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

from trayline.particle.auth import AccessToken
from trayline.particle.client import ParticleClient, RetryPolicy
from trayline.particle.emulator import EmulatorApp, EmulatorConfig, create_app
from trayline.particle.ratelimit import RateLimit, RateLimiter

PRODUCT = 4242
OTHER_PRODUCT = 4343
TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
FAST_RETRY = RetryPolicy(
    max_attempts=12, base=0.001, cap=0.01, rate_limited_base=0.01, rate_limited_cap=0.05
)


UNLIMITED = RateLimit(1_000_000, 1)


@dataclass
class Cloud:
    app: EmulatorApp
    token: str

    def client(
        self,
        *,
        limit: RateLimit = UNLIMITED,
        retry: RetryPolicy = FAST_RETRY,
        base_url: str | None = None,
    ) -> ParticleClient:
        transport = None if base_url else httpx2.ASGITransport(app=self.app)
        return ParticleClient(
            AccessToken(self.token),
            base_url=base_url or "http://cloud.test",
            transport=transport,
            limiter=RateLimiter(limit),
            retry=retry,
        )

    def state(self) -> dict[str, object]:
        return self.app.cloud.snapshot()  # type: ignore[no-any-return]


def make_cloud(config: EmulatorConfig | None = None) -> Cloud:
    app = create_app(config or EmulatorConfig(seed=7))
    app.cloud.add_product(PRODUCT, "tray-product", platform_id=13)
    app.cloud.add_product(OTHER_PRODUCT, "other-product", platform_id=13)
    token = app.cloud.add_token("maker@example.com", token=TOKEN)
    return Cloud(app, token)

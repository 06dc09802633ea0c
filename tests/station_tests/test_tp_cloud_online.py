"""The cloud_online step against the local Particle Cloud, in-process (httpx2 ASGITransport).

The emulator's admin route ``POST /_emulator/devices/:id/online`` stands for a
device finishing its connection (breathing cyan), as in a rehearsal. The
runner's sleep is the test's hook: each "wait" between polls advances a fake
clock, and after the second poll the device comes online.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
from fake_testfw import FakeTestFirmware

from trayline.particle.auth import AccessToken
from trayline.particle.emulator import EmulatorConfig, create_app
from trayline.station.connectivity import ParticleCloudPresence
from trayline.station.measurements import Verdict
from trayline.station.testplan_config import parse_test_plan
from trayline.station.testrunner import TestOutcome, run_test_plan

PRODUCT = 4242
PLAN = parse_test_plan(
    {"steps": [{"name": "online", "kind": "cloud_online", "timeout_s": 60, "poll_interval_s": 10}]}
)


class Cloud:
    def __init__(self) -> None:
        self.app = create_app(EmulatorConfig(seed=7))
        self.state: Any = self.app.cloud
        self.state.add_product(PRODUCT, "line-a", platform_id=13, name="Line A")
        self.token = self.state.add_token("me@example.com")
        self.device = self.state.make_devices("BRN404", 1, product_id=PRODUCT)[0]

    def come_online(self, device_id: str) -> None:
        async def post() -> None:
            transport = httpx2.ASGITransport(app=self.app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://cloud") as http:
                answer = await http.post(
                    f"/_emulator/devices/{device_id}/online", json={"online": True}
                )
                assert answer.status_code == 200, answer.text

        asyncio.run(post())


class FakeTime:
    def __init__(self, on_sleep: Callable[[int], None] = lambda _n: None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        self.on_sleep(self.sleeps)


def run(cloud: Cloud, time: FakeTime, device_id: str, token: str | None = None) -> TestOutcome:
    presence = ParticleCloudPresence.connect(
        AccessToken(token or cloud.token),
        str(PRODUCT),
        base_url="http://cloud",
        transport=httpx2.ASGITransport(app=cloud.app),
    )
    return run_test_plan(
        PLAN,
        FakeTestFirmware(),
        cloud_check=presence,
        expect_device_id=device_id,
        sleep=time.sleep,
        clock=time.clock,
    )


def test_device_coming_online_passes_after_polling() -> None:
    cloud = Cloud()

    def come_online(sleeps: int) -> None:
        if sleeps == 2:
            cloud.come_online(cloud.device.id)

    time = FakeTime(come_online)
    outcome = run(cloud, time, cloud.device.id)
    assert outcome.passed, outcome.reason
    assert time.now == 20  # two waits of poll_interval_s, then the third poll saw it online
    m = outcome.measurements[0]
    assert (m.name, m.value, m.equals, m.verdict) == ("online", True, True, Verdict.PASS)


def test_device_never_online_fails_at_the_timeout() -> None:
    cloud = Cloud()
    time = FakeTime()
    outcome = run(cloud, time, cloud.device.id)
    assert (
        outcome.reason == f"online: the cloud did not report {cloud.device.id} online within 60 s"
    )
    assert time.now == 60 and outcome.measurements[0].verdict is Verdict.FAIL


def test_device_not_in_the_product_says_so() -> None:
    cloud = Cloud()
    stray = "e00fce68ffffffffffffffff"
    outcome = run(cloud, FakeTime(), stray)
    assert outcome.reason == (
        f"online: the cloud did not report {stray} online within 60 s "
        f"(device {stray} is not in product {PRODUCT} (yet))"
    )


def test_refused_token_is_not_waited_out() -> None:
    cloud = Cloud()
    time = FakeTime()
    outcome = run(cloud, time, cloud.device.id, token="not-a-real-token")
    assert outcome.reason is not None
    assert outcome.reason.startswith("online: the cloud refused the online check:")
    assert "not-a-real-token" not in outcome.reason
    assert time.sleeps == 0

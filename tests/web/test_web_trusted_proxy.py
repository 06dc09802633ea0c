"""``trayline serve --trusted-proxy``: whose ``X-Forwarded-For`` names the client.

The sign-in limit counts failures per client address. A proxy on this machine, or
one named with ``--trusted-proxy``, is believed about whom it relays for; any other
peer is its own address whatever it claims, and uvicorn's ``FORWARDED_ALLOW_IPS``
variable (``*`` would believe everyone) has no say.
"""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from trayline.cli.app import app as cli
from trayline.web.serving import server_config


def _echo() -> FastAPI:
    echo = FastAPI()

    @echo.get("/who")
    def who(request: Request) -> str:
        return request.client.host if request.client else ""

    return echo


async def _seen(proxies: list[str], peer: str, claimed: str) -> str:
    config = server_config(_echo(), proxies)
    config.load()
    transport = httpx2.ASGITransport(app=config.loaded_app, client=(peer, 40000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://line") as client:
        answer = await client.get("/who", headers={"x-forwarded-for": claimed})
    return str(answer.json())


@pytest.mark.parametrize(
    ("proxies", "peer", "seen"),
    [
        ([], "127.0.0.1", "203.0.113.9"),  # nginx on this machine
        ([], "10.1.2.1", "10.1.2.1"),  # a proxy elsewhere, not named: its own address
        (["10.1.2.1"], "10.1.2.1", "203.0.113.9"),
        (["10.0.0.0/8"], "10.1.2.1", "203.0.113.9"),
        (["10.0.0.0/8"], "192.168.1.7", "192.168.1.7"),  # a client claiming another address
    ],
)
async def test_the_client_address_behind_a_proxy(
    proxies: list[str], peer: str, seen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert await _seen(proxies, peer, "203.0.113.9") == seen


@pytest.mark.parametrize("value", ["*", "proxy.lan", "10.1.2.300", ""])
def test_a_trusted_proxy_that_is_not_an_address_is_refused(sqlite_url: str, value: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--trusted-proxy", value, "--db", sqlite_url])
    assert result.exit_code == 2, result.output
    assert f"--trusted-proxy {value!r}: not an IP address or network" in result.output

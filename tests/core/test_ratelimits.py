"""The one REQUESTS/SECONDS parser: every place that takes a rate limit reads the same words."""

from __future__ import annotations

import pytest

from trayline.core.ratelimits import DEFAULT_RATE_LIMIT, InvalidRateLimit, RateLimit
from trayline.particle.emulator.config import parse_rate_limit
from trayline.particle.ratelimit import rate_limit_from_env

SPELLINGS = [
    ("10000/300", 10000, 300.0),
    ("50/1h", 50, 3600.0),
    ("50/1hour", 50, 3600.0),
    ("50/1hours", 50, 3600.0),
    ("600/5m", 600, 300.0),
    ("600/5min", 600, 300.0),
    ("5/2minutes", 5, 120.0),
    ("5/1minute", 5, 60.0),
    ("7/2sec", 7, 2.0),
    ("7/2second", 7, 2.0),
    (" 10 / 2.5 s ", 10, 2.5),
    ("10/2H", 10, 7200.0),
]


@pytest.mark.parametrize(("text", "requests", "seconds"), SPELLINGS)
def test_every_reader_accepts_the_same_words(text: str, requests: int, seconds: float) -> None:
    """The client's option, the environment and the local cloud agree on every spelling."""
    assert RateLimit.parse(text) == RateLimit(requests, seconds)
    assert parse_rate_limit(text) == (requests, seconds)
    assert rate_limit_from_env(text) == RateLimit(requests, seconds)


@pytest.mark.parametrize("text", ["", "abc", "10", "10/", "0/5", "5/0", "1/1d", "2/3 hrs", "1.5/3"])
def test_every_reader_refuses_the_same_words(text: str) -> None:
    with pytest.raises(InvalidRateLimit):
        RateLimit.parse(text)
    with pytest.raises(ValueError, match=r"rate limit|positive"):
        parse_rate_limit(text)


@pytest.mark.parametrize("text", [None, "", "  ", "off", "OFF", " Off "])
def test_parse_or_off_means_no_limit(text: str | None) -> None:
    assert RateLimit.parse_or_off(text) is None


def test_parse_or_off_still_refuses_nonsense() -> None:
    assert RateLimit.parse_or_off("20/10") == RateLimit(20, 10)
    for text in ("fast", "none", "unlimited"):
        with pytest.raises(InvalidRateLimit):
            RateLimit.parse_or_off(text)


def test_str_round_trips() -> None:
    assert str(DEFAULT_RATE_LIMIT) == "10000/300"
    assert RateLimit.parse(str(RateLimit.parse("50/1h"))) == RateLimit(50, 3600)

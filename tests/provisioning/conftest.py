"""Fixtures for the provisioning tests; the shared helpers live in :mod:`cloudkit`.

Tests import helpers from ``cloudkit``, never from ``conftest``: several test
folders have a conftest.py, and ``from conftest import …`` inside a test
body would get whichever folder's conftest pytest loaded last.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cloudkit import Cloud, make_cloud

from trayline.particle.emulator import serve_in_background


@pytest.fixture
def cloud() -> Cloud:
    return make_cloud()


@pytest.fixture
def cloud_url(cloud: Cloud) -> Iterator[str]:
    with serve_in_background(cloud.app) as url:
        yield url

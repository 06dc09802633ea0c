"""In a real browser: an operator scans units on the station page and sees PASS and FAIL with its
reason, answers a prompt with the YES button; search by a part serial opens the unit; the
dashboard shows the unit in yield. Each test saves a screenshot (tests/e2e/screenshots/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserkit import ARGS, CHROMIUM, SHOTS, serving

from station.linekit import World
from trayline.store.db import open_store
from web.webkit import PASSWORD, PROMPT_CONFIG, add_users, build_app

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} missing: run `make e2e-deps` (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def _line(folder: Path, config: str | None = None) -> tuple[Any, Any, World]:
    store = open_store(f"sqlite:///{folder / 'trayline.db'}")
    add_users(store)
    world = World()
    world.add(1)
    world.add(2, readings={"vbat": 3.05})
    world.add(3)
    app = build_app(store, folder, world, config) if config else build_app(store, folder, world)
    return store, app, world


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store, app, _world = _line(tmp_path_factory.mktemp("e2e"))
    with serving(app) as url:
        station = app.state.hub.get("st1")
        for scan in ("P028LAB00000003", "BAT-000003", "ENC-000003"):  # built before any test
            station.scan(scan)
        assert station.runner.wait_idle(timeout=60)
        yield url
    store.dispose()


def _page(browser: Any, url: str, user: str = "operator") -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url + "/station/st1")
    assert "/login" in page.url  # no session: the login page
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/station/st1")
    return page


def _scan(page: Any, text: str) -> None:
    """As a keyboard-wedge scanner does: type into whatever has focus, then Enter."""
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('scan').value === ''")


def _shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_an_operator_scans_a_unit_and_sees_pass(browser: Any, site: str) -> None:
    page = _page(browser, site)
    assert page.evaluate("document.activeElement.id") == "scan"
    _scan(page, "P028LAB00000001 mobilesecret")
    assert "scan battery, enclosure" in page.inner_text("#last")
    _scan(page, "BAT-000001")
    page.click("h1, .notices, body", position={"x": 5, "y": 300})  # focus wanders off …
    page.wait_for_function("document.activeElement.id === 'scan'")  # … and comes back
    _scan(page, "ENC-000001")
    card = page.locator(".slot.pass", has_text="P028LAB00000001")
    card.wait_for(timeout=30_000)
    assert card.locator(".verdict").inner_text() == "PASS"
    colour = card.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(30, 142, 62)"
    assert "mobilesecret" not in page.content()
    _shot(page, "station-pass")


def test_a_failing_unit_shows_its_reason(browser: Any, site: str) -> None:
    page = _page(browser, site)
    for scan in ("P028LAB00000002", "BAT-000002", "ENC-000002"):
        _scan(page, scan)
    card = page.locator(".slot.fail", has_text="P028LAB00000002")
    card.wait_for(timeout=30_000)
    assert card.locator(".verdict").inner_text() == "FAIL"
    reason = card.locator(".reason").inner_text()
    assert "vbat" in reason and "3.05" in reason
    _shot(page, "station-fail")


def test_search_by_a_part_serial_opens_the_unit_page(browser: Any, site: str) -> None:
    page = _page(browser, site)
    page.fill("header .search input", "ENC-000003")
    page.press("header .search input", "Enter")
    page.wait_for_url(site + "/units/P028LAB00000003")
    assert "P028LAB00000003" in page.inner_text("h1")
    assert "ENC-000003" in page.inner_text("#parts")
    assert "ready" in page.inner_text("h1 .status")
    _shot(page, "unit-page")


def test_the_dashboard_shows_the_unit_in_yield(browser: Any, site: str) -> None:
    page = _page(browser, site, "engineer")
    page.goto(site + "/")
    assert page.inner_text("#final-yield").endswith(" %")
    ready = int(page.inner_text("#yield-table tbody tr:last-child td:nth-child(2)"))
    assert ready >= 1  # P028LAB00000003, and the station tests' units when they ran first
    assert page.locator("section.chart svg").count() == 1
    _shot(page, "dashboard")


def test_a_prompt_is_answered_with_the_yes_button(browser: Any, tmp_path: Path) -> None:
    store, app, _world = _line(tmp_path, PROMPT_CONFIG)
    with serving(app) as url:
        page = _page(browser, url)
        for scan in ("P028LAB00000001", "BAT-000001", "ENC-000001"):
            _scan(page, scan)
        yes = page.locator(".prompt button.yes")
        yes.wait_for(timeout=30_000)
        assert "Is the status LED green?" in page.inner_text(".prompt")
        _shot(page, "station-prompt")
        yes.click()
        page.locator(".slot.pass", has_text="P028LAB00000001").wait_for(timeout=30_000)
        assert page.locator(".prompt").count() == 0
        _shot(page, "station-prompt-answered")
    store.dispose()

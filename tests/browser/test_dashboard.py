"""The dashboard in a real (headless Debian) Chromium against a real server process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.browser import (
    EVIL_NAME,
    Recorded,
    config_with_names,
    normalized,
    post_use,
    screenshot,
    wait_state_is,
    wait_value,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser, pytest.mark.slow]  # Chromium, real servers
FITS = """() => document.documentElement.scrollHeight <= window.innerHeight
             && document.documentElement.scrollWidth <= window.innerWidth"""


def assert_same_origin(rec: Recorded, base: str) -> None:
    """Every request the page made went to the server under test, nowhere else."""
    assert rec.requests, "no request recorded"
    elsewhere = [u for u in rec.requests if not (u.startswith(base + "/") or u.startswith(base.replace("http", "ws", 1)
                                                                                         + "/"))]
    assert not elsewhere, elsewhere


def assert_clean(rec: Recorded) -> None:
    """No console error (a CSP violation would be one) and no dialog."""
    assert not rec.errors, rec.errors
    assert not rec.dialogs, rec.dialogs


def test_initial_figures_poll_and_live_push(server, open_page) -> None:
    post_use(server.url, 12.5, 2)
    page, rec = open_page(server.url + "/", wait_state="live")
    wait_value(page, "gel-used", 12.5)
    assert normalized(page.text_content("#gel-used")) == "12,5 ml"
    assert page.text_content("#hands-detected") == "2"
    assert page.get_attribute("html", "lang") == "fr"
    assert page.locator(".dispenser").count() == 3
    assert "Entrée" in page.text_content(".dispenser[data-id=entree] .dispenser-name")
    assert page.text_content("#last-update") != "—"
    assert page.get_attribute("#connection-status", "data-transport") == "websocket"

    # The 5 s poll stays on while the websocket is up, and answers 304 when nothing changed.
    with page.expect_response(lambda r: "/obtenir_donnees_utilisation" in r.url and r.status == 304, timeout=7000):
        pass

    # The next poll is about 5 s away: a value shown before any poll answers with it came by the push. No clock
    # bound, so a loaded machine does not fail it; a page that only polled would show a 200 poll first.
    polled = len([1 for url, status in rec.responses if "/obtenir_donnees_utilisation" in url and status == 200])
    post_use(server.url, 1.5, 1)
    wait_value(page, "hands-detected", 3)
    assert polled == len([1 for url, status in rec.responses if "/obtenir_donnees_utilisation" in url
                          and status == 200]), "the new value came by a poll, not by the push"
    assert normalized(page.text_content("#gel-used")) == "14 ml"
    page.wait_for_function("() => document.getElementById('realtime-chart').dataset.total === '2'", timeout=5000)
    assert page.locator("#csv-link").get_attribute("href").startswith(server.url + "/api/export.csv?bucket=hour")
    screenshot(page, "desktop-fr")
    assert_same_origin(rec, server.url)
    assert_clean(rec)


def test_polling_fallback_when_socketio_is_blocked(server, open_page) -> None:
    page, rec = open_page(server.url + "/", block_socketio=True, wait_state="polling")
    post_use(server.url, 2.0, 1)
    # One 5 s poll period brings it; 15 s leaves room for a loaded machine (Socket.IO is blocked: no push can).
    wait_value(page, "hands-detected", 1, timeout_s=15)
    assert any("/obtenir_donnees_utilisation" in url and status == 200 for url, status in rec.responses)
    assert page.get_attribute("#connection-status", "data-state") == "polling"
    assert "5 s" in page.text_content("#connection-status")
    assert_clean(rec)


def test_offline_when_server_stops_then_reconnects(server, open_page) -> None:
    page, _ = open_page(server.url + "/", wait_state="live")
    server.stop()
    wait_state_is(page, "offline", timeout_s=15)
    assert page.is_visible("#stale-banner")
    server.start()
    wait_state_is(page, "live", timeout_s=15)
    assert page.is_hidden("#stale-banner")


def test_english_by_query_and_by_accept_language(server, open_page) -> None:
    post_use(server.url, body=[{"gel_used": 1000, "hands_detected": 1}, {"gel_used": 250, "hands_detected": 1}],
             dispenser="b12")
    post_use(server.url, 120, 40, dispenser="cafeteria")
    by_query, rec = open_page(server.url + "/?lang=en", wait_state="live")  # the context itself says fr-FR
    by_header, rec_header = open_page(server.url + "/", wait_state="live", locale="en-US")
    for page in (by_query, by_header):
        wait_value(page, "gel-used", 1370)
        assert page.get_attribute("html", "lang") == "en"
        assert normalized(page.text_content("#gel-used")) == "1.37 L"
        assert page.text_content("h1") == "Hand sanitizer usage"
        assert page.text_content("#connection-status").strip() == "Live"
        assert "empty around" in page.text_content(".dispenser[data-id=cafeteria] .dispenser-empty")
    screenshot(by_header, "desktop-en")
    forced, _ = open_page(server.url + "/?lang=fr", locale="en-US")
    assert forced.get_attribute("html", "lang") == "fr"
    for recorded in (rec, rec_header):
        assert_same_origin(recorded, server.url)
        assert_clean(recorded)


def test_kiosk_fits_both_screens(server, open_page) -> None:
    post_use(server.url, 272, 90, dispenser="entree")  # low: under 15 % of 300 ml
    post_use(server.url, body=[{"gel_used": 1.2, "hands_detected": 1}] * 60, dispenser="cafeteria")
    page, rec = open_page(server.url + "/?kiosk=1", wait_state="live", viewport={"width": 1920, "height": 1080})
    wait_value(page, "hands-detected", 150)
    assert "kiosk" in page.get_attribute("html", "class")
    assert page.locator("[data-range]").count() == 0 and page.locator("#csv-link").count() == 0
    assert page.is_visible("#alerts")
    assert page.locator(".dispenser").count() == 3
    for width, height in ((1920, 1080), (1280, 800)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(FITS, timeout=3000)
        size = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert size[0] <= width and size[1] <= height, size
        # Huge totals: readable from 3 metres.
        font = page.evaluate("() => parseFloat(getComputedStyle(document.getElementById('gel-used')).fontSize)")
        assert font >= 0.09 * height
        canvas_h = page.evaluate("() => document.getElementById('realtime-chart').getBoundingClientRect().height")
        assert canvas_h > 0.15 * height
        screenshot(page, f"kiosk-{width}x{height}")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(10, 16, 22)"
    assert_same_origin(rec, server.url)
    assert_clean(rec)


def test_html_in_a_dispenser_name_stays_text(server_factory, open_page, tmp_path: Path) -> None:
    server = server_factory(config_with_names(tmp_path / "evil.toml", {"entree": EVIL_NAME}))
    post_use(server.url, 1.0, 1, dispenser="entree")
    page, rec = open_page(server.url + "/", wait_state="live")
    page.wait_for_selector(".dispenser[data-id=entree]")
    assert page.text_content(".dispenser[data-id=entree] .dispenser-name") == EVIL_NAME
    page.wait_for_selector("#alerts .alert[data-dispenser=cafeteria]")
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert not any(u.endswith("/x") for u in rec.requests)
    assert_clean(rec)


def test_offline_and_low_alerts_are_shown(server_factory, open_page) -> None:
    server = server_factory(async_mode="eventlet", offline_after_s=2, check_interval_s=0.5)
    post_use(server.url, 280, 1, dispenser="entree")  # 20 ml left of 300: low
    page, rec = open_page(server.url + "/", wait_state="live")
    page.wait_for_selector("#alerts .alert-low[data-dispenser=entree]")
    assert page.is_visible("#alerts")
    assert "presque vide" in page.text_content("#alerts .alert-low[data-dispenser=entree]")
    assert "is-low" in page.get_attribute(".dispenser[data-id=entree]", "class")
    # Nobody posts any more: the watchdog pushes the offline transition by itself.
    page.wait_for_selector("#alerts .alert-offline[data-dispenser=entree]", timeout=8000)
    assert "hors ligne" in page.text_content("#alerts .alert-offline[data-dispenser=entree]")
    assert "is-offline" in page.get_attribute(".dispenser[data-id=entree]", "class")
    assert "valeurs figées" in page.text_content(".dispenser[data-id=entree] .dispenser-seen")
    assert_clean(rec)


def test_new_version_reloads_kiosk_and_offers_reload_on_desktop(server, open_page) -> None:
    def fake_version_once(served: list[int]):
        def handle(route) -> None:
            if served:
                route.continue_()
                return
            served.append(1)
            route.fulfill(status=200, content_type="application/json", body=json.dumps({"version": "9.9.9+new"}))
        return handle

    page, rec = open_page("about:blank")
    page.route("**/api/version", fake_version_once([]))
    page.goto(server.url + "/?kiosk=1")
    page.wait_for_function("() => sessionStorage.getItem('dashboard-reloaded-at') !== null", timeout=10000)
    wait_state_is(page, "live")
    loads = [u for u in rec.requests if u == server.url + "/?kiosk=1"]
    assert len(loads) == 2, loads

    desktop, desktop_rec = open_page("about:blank")
    desktop.route("**/api/version", fake_version_once([]))
    desktop.goto(server.url + "/")
    desktop.wait_for_selector("#reload-notice", state="visible", timeout=10000)
    # A reload follows the version check at once: by the next poll it would have happened.
    with desktop.expect_response(lambda r: "/obtenir_donnees_utilisation" in r.url, timeout=10000):
        pass
    assert [u for u in desktop_rec.requests if u == server.url + "/"] == [server.url + "/"], desktop_rec.requests
    assert desktop.evaluate("() => sessionStorage.getItem('dashboard-reloaded-at')") is None
    assert desktop.is_visible("#reload-notice")

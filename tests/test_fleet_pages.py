"""Issue 12 in a real Chromium: the wall display at 1 to 1,000 dispensers, group views, the refill round, deltas."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers.browser import Recorded, screenshot, wait_state_is, wait_value
from tests.helpers.servers import ServerProcess
from tools.fleet_layout import layout, write_fleet

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

ADMIN = "token-admin-0000"
MAINTENANCE = "token-maintenance-0000"
SCREENS = ((1920, 1080), (1280, 800))
PAGE_S = 0.6  # the kiosk's page period for these tests (`&page_s=`): a whole cycle of 1,000 in seconds

NO_SCROLL = """() => document.scrollingElement.scrollHeight <= innerHeight
                    && document.scrollingElement.scrollWidth <= innerWidth"""
# Every tile on screen lies inside the viewport and its list; no name is clipped (wrapped, never cut).
TILES_VISIBLE = """() => {
  const box = document.getElementById('dispenser-list').getBoundingClientRect();
  const bad = [];
  document.querySelectorAll('#dispenser-list .dispenser').forEach((tile) => {
    const r = tile.getBoundingClientRect();
    const name = tile.querySelector('.dispenser-name');
    const n = name.getBoundingClientRect();
    const clipped = name.scrollWidth > name.clientWidth + 1 || n.bottom > r.bottom + 0.5 || n.right > r.right + 0.5;
    if (r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5 || r.bottom > box.bottom + 0.5 || clipped)
      bad.push(tile.dataset.id);
  });
  return bad;
}"""
COLLECT_CYCLE = """() => {
  window.seenIds = new Set();
  window.seenPages = new Set();
  document.querySelectorAll('#dispenser-list .dispenser').forEach((t) => window.seenIds.add(t.dataset.id));
  document.addEventListener('kiosk-page', (e) => {
    e.detail.ids.forEach((id) => window.seenIds.add(id));
    window.seenPages.add(e.detail.page);
  });
}"""


class Fleet:
    """A server process with `n` dispensers in groups (tools/fleet_layout.py) and their tokens."""

    def __init__(self, directory: Path, n: int):
        server = {"database": "sqlite:///usage.db", "async_mode": "eventlet", "admin_token": ADMIN,
                  "maintenance_token": MAINTENANCE}
        config, self.tokens = write_fleet(directory, n, server)
        self.groups, self.dispensers = layout(n)
        self.ids = [d["id"] for d in self.dispensers]
        self.process = ServerProcess(config).start()
        self.url = self.process.url

    def post(self, dispenser: str, gel: float = 1.5, hands: int = 1, count: int = 1) -> dict:
        """POST `count` uses as one dispenser."""
        resp = requests.post(self.url + "/mettre_a_jour_donnees", json=[{"gel_used": gel, "hands_detected": hands}] * count,
                             headers={"Authorization": f"Bearer {self.tokens[dispenser]}"}, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def members(self, group: str) -> set[str]:
        """The dispensers of a group and its descendants."""
        parent = {g["id"]: g.get("parent") for g in self.groups}

        def inside(g: str | None) -> bool:
            while g is not None:
                if g == group:
                    return True
                g = parent[g]
            return False

        return {d["id"] for d in self.dispensers if inside(d["group"])}


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], Fleet]]:
    """fleets(n): one server per fleet size for the whole module, stopped at the end."""
    started: dict[int, Fleet] = {}

    def get(n: int) -> Fleet:
        if n not in started:
            fleet = started[n] = Fleet(tmp_path_factory.mktemp(f"fleet{n}"), n)
            fleet.post(fleet.ids[0], gel=280, hands=3)  # 20 ml left of 300: low
            if n > 1:
                fleet.post(fleet.ids[1], gel=2, hands=1, count=4)
        return started[n]

    yield get
    for fleet in started.values():
        fleet.process.stop()


def assert_clean(rec: Recorded) -> None:
    """No console error (a CSP violation would be one) and no dialog."""
    assert not rec.errors, rec.errors
    assert not rec.dialogs, rec.dialogs


def shown_ids(page: Any) -> list[str]:
    """The dispenser ids on screen now."""
    return page.eval_on_selector_all("#dispenser-list .dispenser", "nodes => nodes.map(n => n.dataset.id)")


def check_kiosk_screen(page: Any, fleet: Fleet, width: int, height: int) -> int:
    """One screen size: no scrolling, every tile inside it, names whole, alerts visible; return the page count."""
    page.wait_for_function(NO_SCROLL, timeout=5000)
    assert page.evaluate(TILES_VISIBLE) == []
    assert page.is_visible("#alerts")
    alerts = page.eval_on_selector("#alerts", "n => n.getBoundingClientRect().bottom")
    assert alerts <= height
    assert page.locator("#alerts .alert-low").count() >= 1 or page.locator("#alerts .alert").count() >= 2
    font = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.tile .dispenser-name')).fontSize)")
    assert font >= 13 and font >= 0.0175 * height, font  # a name stays readable across a room
    pages = int(page.get_attribute("#dispenser-list", "data-pages"))
    per_page = int(page.get_attribute("#dispenser-list", "data-per-page"))
    assert len(shown_ids(page)) == min(per_page, len(fleet.ids))
    if pages > 1:
        assert page.is_visible("#kiosk-page")
        assert page.text_content("#kiosk-page").startswith("page ")
        assert page.text_content("#kiosk-page").endswith(f"/{pages}")
    else:
        assert page.is_hidden("#kiosk-page")
    return pages


@pytest.mark.parametrize("n", [1, 10, 60, 300, 1000])
def test_kiosk_fits_and_shows_every_dispenser_within_a_cycle(fleets, open_page, n: int) -> None:
    fleet = fleets(n)
    page, rec = open_page(f"{fleet.url}/?kiosk=1&page_s={PAGE_S}", wait_state="live",
                          viewport={"width": 1920, "height": 1080})
    page.wait_for_selector("#dispenser-list .dispenser")
    for width, height in SCREENS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function("([w, h]) => innerWidth === w && innerHeight === h", arg=[width, height])
        pages = check_kiosk_screen(page, fleet, width, height)
        if n == 1000:
            screenshot(page, f"kiosk-1000-{width}x{height}")
        page.evaluate(COLLECT_CYCLE)
        # One whole cycle: every page seen once (the page turns by itself every PAGE_S seconds).
        page.wait_for_function("n => window.seenPages.size >= n || (n === 1)", arg=pages,
                               timeout=(pages + 3) * PAGE_S * 1000 + 5000)
        seen = set(page.evaluate("() => Array.from(window.seenIds)"))
        assert seen == set(fleet.ids), (len(seen), len(fleet.ids))
    assert_clean(rec)


def test_kiosk_stays_smooth_while_20_uses_per_second_arrive(fleets, open_page) -> None:
    fleet = fleets(1000)
    page, rec = open_page(f"{fleet.url}/?kiosk=1", wait_state="live", viewport={"width": 1920, "height": 1080})
    page.wait_for_selector("#dispenser-list .dispenser")
    page.evaluate("""() => {
      window.longTasks = [];
      new PerformanceObserver((list) => list.getEntries().forEach((e) => window.longTasks.push(e.duration)))
        .observe({ type: 'longtask' });
    }""")
    before = int(page.get_attribute("#hands-detected", "data-value"))
    on_screen = shown_ids(page)
    senders = [on_screen[2], on_screen[3]] + fleet.ids[-10:]  # tiles on screen and off it
    stop = time.monotonic() + 5
    sent = 0

    def send() -> None:
        nonlocal sent
        i = 0
        while time.monotonic() < stop:
            fleet.post(senders[i % len(senders)], gel=0.5, hands=1)
            sent += 1
            i += 1
            time.sleep(max(0.0, 0.05 - 0.001))  # about 20 per second

    sender = threading.Thread(target=send)
    sender.start()
    sender.join()
    wait_value(page, "hands-detected", before + sent)
    long_tasks = page.evaluate("() => window.longTasks")
    assert sent >= 60
    assert not [d for d in long_tasks if d > 50], long_tasks
    assert_clean(rec)

"""Fleets in a real Chromium: the wall display at 1 to 1,000 dispensers, group views, the refill round, deltas."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devkit.servers import ServerProcess
from tests.helpers.browser import ARTIFACTS, Recorded, config_with_names, pump_until, screenshot, wait_value
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
    const room = tile.querySelector('.tile-name').getBoundingClientRect();  // no spill over the level line
    const clipped = name.scrollWidth > name.clientWidth + 1 || n.bottom > room.bottom + 0.5 || n.right > r.right + 0.5;
    if (r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5 || r.bottom > box.bottom + 0.5 || clipped)
      bad.push(tile.dataset.id);
  });
  return bad;
}"""
HISTORY_TOTAL = """(e) => { const c = window.Chart.getChart(document.getElementById('history-chart'));
    return !!c && c.data.datasets[0].data.reduce((a, b) => a + b, 0) === e; }"""
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
        self.http = requests.Session()

    def populate(self) -> None:
        """A hospital in use: levels from full to nearly empty (some low), the last two dispensers never seen."""
        self.post(self.ids[0], gel=self.dispensers[0]["capacity_ml"] - 20, hands=3)  # 20 ml left: low
        for i, ident in enumerate(self.ids[1:-2] if len(self.ids) > 3 else self.ids[1:], start=1):
            self.post(ident, gel=float((i * 53) % 280 + 1), hands=1 + i % 3)

    def post(self, dispenser: str, gel: float = 1.5, hands: int = 1, count: int = 1) -> dict:
        """POST `count` uses as one dispenser."""
        resp = self.http.post(self.url + "/mettre_a_jour_donnees",
                              json=[{"gel_used": gel, "hands_detected": hands}] * count,
                              headers={"Authorization": f"Bearer {self.tokens[dispenser]}"}, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wards(self) -> list[str]:
        """The groups that hold dispensers directly, in the config's order."""
        holding = {d["group"] for d in self.dispensers}
        return [g["id"] for g in self.groups if g["id"] in holding]

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
            fleet.populate()
        return started[n]

    yield get
    for fleet in started.values():
        fleet.process.stop()


def screen(page: Any, name: str) -> None:
    """Save what the screen shows (not the whole scrolled page) under tests/artifacts/, as a user sees it."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


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
    assert 1 <= len(shown_ids(page)) <= per_page
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
        if page.get_attribute("#dispenser-list", "data-mode") == "wards":
            # Past three pages of dispensers the site's wall shows its wards: every ward within a cycle of a few
            # pages, and every dispenser that needs attention still named in the attention list.
            assert n >= 300 and pages <= -(-len(fleet.wards()) // 20), pages
            assert seen == set(fleet.wards()), (len(seen), len(fleet.wards()))
            named = set(page.eval_on_selector_all("#attention-list [data-id]", "ns => ns.map(n => n.dataset.id)"))
            assert named and named <= set(fleet.ids)
        else:
            assert n <= 60, "a fleet of a few pages shows its dispensers"
            assert seen == set(fleet.ids), (len(seen), len(fleet.ids))
    assert_clean(rec)


def test_kiosk_stays_smooth_while_20_uses_per_second_arrive(fleets, open_page) -> None:
    fleet = fleets(1000)
    # No page turn during the test (page_s=600), so every tile written to is one a use touched.
    page, rec = open_page(f"{fleet.url}/?kiosk=1&page_s=600", wait_state="live",
                          viewport={"width": 1920, "height": 1080})
    page.wait_for_selector("#dispenser-list .dispenser")
    # Measure the steady state: the first load done (chart drawn, main thread idle), then the uses.
    page.wait_for_function("() => document.getElementById('realtime-chart').dataset.total !== undefined")
    page.evaluate("() => new Promise((done) => requestIdleCallback(done, { timeout: 3000 }))")
    page.evaluate("""() => {
      window.longTasks = [];
      new PerformanceObserver((list) => list.getEntries().forEach((e) => window.longTasks.push(e.duration)))
        .observe({ type: 'longtask' });
      window.touched = new Set();
      new MutationObserver((records) => records.forEach((r) => {
        const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        const tile = node && node.closest('#dispenser-list .dispenser');
        if (tile) window.touched.add(tile.dataset.id);
      })).observe(document.getElementById('dispenser-list'),
                  { subtree: true, childList: true, characterData: true, attributes: true });
    }""")
    before = int(page.get_attribute("#hands-detected", "data-value"))
    on_screen = shown_ids(page)  # at 1,000 the site's wall shows its wards: one dispenser of two wards on screen
    assert page.get_attribute("#dispenser-list", "data-mode") == "wards"
    in_ward = {w: next(d["id"] for d in fleet.dispensers if d["group"] == w) for w in on_screen[2:4]}
    senders = list(in_ward.values()) + fleet.ids[-10:]  # tiles on screen and off it (the last ward)
    assert fleet.dispensers[-1]["group"] not in on_screen
    start = time.monotonic()
    uses = 100  # 20 per second for 5 s, paced by a schedule; 4 senders so a slow answer does not slow the rate

    def send(lane: int) -> None:
        http = requests.Session()
        for k in range(lane, uses, 4):
            time.sleep(max(0.0, start + k / 20 - time.monotonic()))
            resp = http.post(fleet.url + "/mettre_a_jour_donnees", json={"gel_used": 0.5, "hands_detected": 1},
                             headers={"Authorization": f"Bearer {fleet.tokens[senders[k % len(senders)]]}"}, timeout=10)
            assert resp.status_code == 200

    lanes = [threading.Thread(target=send, args=(lane,)) for lane in range(4)]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    sent = uses
    elapsed = time.monotonic() - start
    wait_value(page, "hands-detected", before + sent)
    # The 50 ms long-task goal and the held rate are timings: `make bench` (the fleet step) measures them as
    # figures. A loaded CI machine stretches both without any fault, so this test checks the structure that
    # keeps the page smooth (only the touched tiles redrawn) and records the long tasks for the failure message.
    long_tasks = page.evaluate("() => window.longTasks")
    # Only the tiles of the dispensers that posted were written to; the other tiles on screen were left alone.
    assert set(page.evaluate("() => Array.from(window.touched)")) == {on_screen[2], on_screen[3]}, (
        long_tasks, elapsed)
    # Most deltas carry no alerts (none moved): the banner still counts every alert the server knows of.
    served = requests.get(f"{fleet.url}/obtenir_donnees_utilisation", timeout=10).json()["alerts"]
    kinds = Counter(a["kind"] for a in served)
    chips = dict(page.eval_on_selector_all("#alerts .alert-count",
                                           "ns => ns.map(n => [n.dataset.kind, n.textContent])"))
    assert {k: int(chips[k].split()[0]) for k in chips} == dict(kinds), (chips, kinds)
    assert_clean(rec)


def group_payload(fleet: Fleet, group: str) -> dict:
    """The GET for one group, as the server answers it."""
    resp = requests.get(f"{fleet.url}/obtenir_donnees_utilisation", params={"group": group}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_group_view_picker_breadcrumb_attention_search_and_table(fleets, open_page) -> None:
    fleet = fleets(60)
    members = fleet.members("bat-a-e1")
    page, rec = open_page(f"{fleet.url}/?group=bat-a-e1", wait_state="live")
    page.wait_for_function("n => document.querySelectorAll('#dispenser-list .dispenser').length === n",
                           arg=len(members))
    assert set(page.eval_on_selector_all(".dispenser", "ns => ns.map(n => n.dataset.id)")) == members
    expected = group_payload(fleet, "bat-a-e1")
    wait_value(page, "hands-detected", expected["hands_detected"])
    # The charts and the CSV link are the group's too, with no "whole fleet" note: its doses, not the fleet's.
    def doses(**scope: str) -> int:
        answer = fleet.http.get(f"{fleet.url}/api/history", params={"bucket": "minute", **scope}, timeout=10).json()
        return sum(p["events"] for p in answer["points"])

    in_group = doses(group="bat-a-e1")
    assert 0 < in_group < doses()
    page.wait_for_selector(f"#realtime-chart[data-total='{in_group}']")
    page.wait_for_function(HISTORY_TOTAL, arg=in_group)
    assert "group=bat-a-e1" in page.get_attribute("#csv-link", "href")
    assert page.locator(".panel-note").count() == 0
    assert page.input_value("#group-picker") == "bat-a-e1"
    assert page.locator("#group-picker option").count() == len(fleet.groups) + 1
    crumbs = page.eval_on_selector_all("#breadcrumb li", "ns => ns.map(n => n.textContent)")
    assert crumbs == ["Tous les distributeurs", "CHU Nord", "Bâtiment A", "Étage 1"]
    assert page.get_attribute("#breadcrumb li:last-child span", "aria-current") == "page"
    wards = [g for g in fleet.groups if g.get("parent") == "bat-a-e1"]
    assert page.locator("#subgroups .subgroup").count() == len(wards)
    # Every card says where it is below the group on screen (its ward), and no name is cut.
    paths = page.eval_on_selector_all(".dispenser .dispenser-path", "ns => ns.map(n => n.textContent)")
    assert all(p.split(" · ")[0] in {w["name"] for w in wards} for p in paths), paths
    assert page.evaluate("""() => Array.from(document.querySelectorAll('.dispenser-name')).every(
        (n) => n.scrollWidth <= n.clientWidth + 1 && getComputedStyle(n).textOverflow !== 'ellipsis')""")
    # Needs attention first: the list and the first cards agree.
    urgent = page.eval_on_selector_all("#attention-list .attention-item", "ns => ns.map(n => n.dataset.id)")
    assert urgent, "the fleet has low dispensers"
    first_cards = page.eval_on_selector_all(".dispenser", "ns => ns.map(n => n.dataset.id)")[:len(urgent)]
    assert first_cards == urgent
    screen(page, "group-view-desktop")

    name = page.text_content(f".dispenser[data-id={first_cards[-1]}] .dispenser-name")
    page.fill("#search", name.lower())
    page.wait_for_function("() => document.querySelectorAll('#dispenser-list .dispenser').length === 1")
    page.fill("#search", "")
    page.click("#view-table")
    page.wait_for_selector("#dispenser-table", state="visible")
    assert page.locator("#dispenser-rows tr").count() == len(members)
    assert page.is_hidden("#dispenser-list")
    page.click("#view-cards")
    page.wait_for_selector("#dispenser-list", state="visible")

    # A use inside the group moves its figures; one outside changes nothing here.
    outside = next(i for i in fleet.ids if i not in members)
    inside = sorted(members)[0]
    fleet.post(outside, gel=1, hands=5)
    fleet.post(inside, gel=1, hands=2)
    wait_value(page, "hands-detected", expected["hands_detected"] + 2)
    assert page.locator(f".dispenser[data-id={outside}]").count() == 0
    # One GET after joining the group's room, then its deltas apply in sequence (no re-read per delta).
    assert page.get_attribute("html", "data-refetches") == "1"

    page.select_option("#group-picker", "ward-001")
    page.wait_for_url("**/?group=ward-001")
    page.wait_for_function("n => document.querySelectorAll('#dispenser-list .dispenser').length === n",
                           arg=len(fleet.members("ward-001")))
    assert requests.get(f"{fleet.url}/?group=nowhere", timeout=5).status_code == 404
    assert_clean(rec)


def test_kiosk_of_one_group(fleets, open_page) -> None:
    fleet = fleets(300)
    members = fleet.members("bat-b-e2")
    page, rec = open_page(f"{fleet.url}/?kiosk=1&group=bat-b-e2&page_s={PAGE_S}", wait_state="live",
                          viewport={"width": 1280, "height": 800})
    page.wait_for_selector("#dispenser-list .dispenser")
    assert "Bâtiment B › Étage 2" in page.text_content("h1")
    check_kiosk_screen(page, fleet, 1280, 800)
    page.evaluate(COLLECT_CYCLE)
    pages = int(page.get_attribute("#dispenser-list", "data-pages"))
    page.wait_for_function("n => window.seenPages.size >= n || (n === 1)", arg=pages, timeout=(pages + 3) * 1000 + 5000)
    assert set(page.evaluate("() => Array.from(window.seenIds)")) == members
    wait_value(page, "hands-detected", group_payload(fleet, "bat-b-e2")["hands_detected"])
    screenshot(page, "kiosk-group-1280x800")
    assert_clean(rec)


PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def test_refill_round_on_a_phone(fleets, open_page) -> None:
    fleet = fleets(60)
    page, rec = open_page(f"{fleet.url}/tournee?group=bat-a", wait_state="live", **PHONE)
    page.wait_for_selector("#refill-list .refill-item")
    assert page.is_visible("#token-form")
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= innerWidth")
    members = fleet.members("bat-a")
    items = page.eval_on_selector_all("#refill-list .refill-item", "ns => ns.map(n => n.dataset.id)")
    assert set(items) <= members
    levels = [float(t.replace("\u00a0", " ").split(" ")[0].replace(",", "."))
              for t in page.eval_on_selector_all(".refill-level", "ns => ns.map(n => n.textContent)")]
    assert levels == sorted(levels) and levels[0] < 15, levels  # lowest first; the low one is there
    paths = page.eval_on_selector_all(".refill-path", "ns => ns.map(n => n.textContent)")
    assert all(p.startswith("Étage ") and " › " in p for p in paths), paths  # floor and ward, below Bâtiment A
    button = page.locator(".refill-button").first
    assert button.text_content() == "Rempli"
    assert button.bounding_box()["height"] >= 44  # a thumb's size

    # A wrong token is refused and asked again; the maintenance token is kept in localStorage, no cookie.
    page.fill("#token", "not-a-token")
    page.click("#token-form button[type=submit]")
    button.click()
    page.wait_for_selector("#token-error", state="visible")
    assert page.is_visible("#token-form")
    page.fill("#token", MAINTENANCE)
    page.click("#token-form button[type=submit]")
    assert page.is_hidden("#token-form")
    first = items[0]
    page.click(f".refill-item[data-id={first}] .refill-button")
    # The push (not the POST's answer) confirms: the level on screen goes back up to full.
    page.wait_for_function("id => document.querySelector(`.refill-item[data-id=${id}] .refill-level`)"
                           ".textContent.startsWith('100')", arg=first, timeout=8000)
    page.wait_for_selector(f".refill-item.is-refilled[data-id={first}]")
    refills = requests.get(f"{fleet.url}/api/dispensers/{first}/refills", timeout=5).json()["refills"]
    assert refills[0]["by"] == "maintenance"
    screen(page, "tournee-phone")
    page.reload()
    page.wait_for_selector("#refill-list .refill-item")
    assert page.is_hidden("#token-form")
    assert page.context.cookies() == []
    english, _ = open_page(f"{fleet.url}/tournee?lang=en", **PHONE)
    english.wait_for_selector(".refill-button")
    assert english.text_content(".refill-button") == "Refilled"
    assert [e for e in rec.errors if "401" not in e and "403" not in e] == []


def test_a_missed_delta_makes_the_page_fetch_the_figures_again(fleets, open_page) -> None:
    fleet = fleets(10)
    drop: dict[str, Any] = {"armed": False, "dropped": []}

    def relay(ws: Any) -> None:
        """Between the page and the server: pass every frame, except one delta once armed."""
        server = ws.connect_to_server()

        def from_server(message: Any) -> None:
            if (drop["armed"] and not drop["dropped"] and isinstance(message, str)
                    and message.startswith('42["donnees_delta"')):
                drop["dropped"].append(message)
                return
            ws.send(message)

        server.on_message(from_server)

    page, rec = open_page("about:blank")
    page.route_web_socket("**/socket.io/**", relay)
    page.goto(fleet.url + "/")
    page.wait_for_function("() => document.getElementById('connection-status').dataset.state === 'live'")
    before = int(page.get_attribute("#hands-detected", "data-value") or 0)
    # The poll asks for what changed since the page's seq: nothing, 304.
    with page.expect_response(lambda r: "since=" in r.url and r.status == 304, timeout=8000):
        pass
    fleet.post(fleet.ids[2], hands=1)
    wait_value(page, "hands-detected", before + 1)
    assert page.get_attribute("html", "data-refetches") is None  # a delta in sequence is applied, no GET

    # The poll would catch up too: keep it out, so only the gap can bring the figures back.
    page.route(lambda url: "since=" in url, lambda route: route.abort())
    drop["armed"] = True
    fleet.post(fleet.ids[3], hands=1)
    pump_until(page, lambda: drop["dropped"], "a delta to drop")
    assert int(page.get_attribute("#hands-detected", "data-value")) == before + 1
    gets = len([u for u in rec.requests if "obtenir_donnees_utilisation" in u and "since=" not in u])
    fleet.post(fleet.ids[4], hands=1)  # its delta's base is the dropped one's seq: a gap
    wait_value(page, "hands-detected", before + 3, timeout_s=3)
    assert page.get_attribute("html", "data-refetches") == "1", "the gap did not make the page re-read the GET"
    assert len([u for u in rec.requests if "obtenir_donnees_utilisation" in u and "since=" not in u]) > gets
    hands = {i: page.text_content(f".dispenser[data-id={i}] .figure-hands") for i in fleet.ids[2:5]}
    expected = {d["id"]: str(d["hands_detected"]) for d in requests.get(
        f"{fleet.url}/obtenir_donnees_utilisation", timeout=5).json()["dispensers"] if d["id"] in hands}
    assert hands == expected


LONG = "Chambre 100 — couloir est, près de l’ascenseur de service du bâtiment principal, côté {side}"


@pytest.mark.parametrize("url, viewport", [("/?kiosk=1", {"width": 1280, "height": 800}),
                                           ("/?kiosk=1", {"width": 1920, "height": 1080}),
                                           ("/", {"width": 390, "height": 844})])
def test_long_names_are_never_cut(server_factory, open_page, tmp_path: Path, url: str, viewport: dict) -> None:
    names = {"entree": LONG.format(side="nord"), "cafeteria": LONG.format(side="sud")}
    server = server_factory(config_with_names(tmp_path / "long.toml", names))
    page, rec = open_page(server.url + url, wait_state="live", viewport=viewport)
    page.wait_for_selector(".dispenser[data-id=cafeteria]")
    for ident, name in names.items():
        node = f".dispenser[data-id={ident}] .dispenser-name"
        assert page.text_content(node) == name
        # Whole on screen: not clipped sideways, not below its card, and no ellipsis anywhere in it.
        assert page.evaluate("""sel => {
          const n = document.querySelector(sel);
          const card = n.closest('.dispenser').getBoundingClientRect();
          const r = n.getBoundingClientRect();
          return n.scrollWidth <= n.clientWidth + 1 && r.bottom <= card.bottom + 0.5 && r.right <= card.right + 0.5
            && getComputedStyle(n).textOverflow !== 'ellipsis';
        }""", node), (url, viewport, ident)
    if "kiosk" in url:
        page.wait_for_function(NO_SCROLL)
        assert page.evaluate(TILES_VISIBLE) == []
    screen(page, f"long-names-{'kiosk' if 'kiosk' in url else 'desktop'}-{viewport['width']}x{viewport['height']}")
    assert_clean(rec)


SECTION_COUNTS = """() => ['refill', 'soon', 'other'].map((k) => {
  const section = document.getElementById(k + '-section');
  const heading = document.getElementById(k + '-count').textContent;
  return { key: k, hidden: section.hidden, heading: heading,
           n: parseInt(heading, 10), items: section.querySelectorAll('.refill-item').length,
           levels: Array.from(section.querySelectorAll('.refill-level'),
                              (n) => parseFloat(n.textContent.replace(',', '.'))),
           low: section.querySelectorAll('.refill-item.is-low').length };
})"""


def test_refill_round_headings_count_what_each_section_lists(fleets, open_page) -> None:
    """Issue 23 item 1: "à remplir" and "bientôt vides" each count the entries their list shows."""
    fleet = fleets(60)
    for width, height in ((390, 844), (1280, 800), (1920, 1080)):
        options = PHONE if width == 390 else {"viewport": {"width": width, "height": height}}
        page, rec = open_page(f"{fleet.url}/tournee", wait_state="live", **options)
        page.wait_for_selector("#soon-list .refill-item")
        sections = {s["key"]: s for s in page.evaluate(SECTION_COUNTS)}
        refill, soon, other = sections["refill"], sections["soon"], sections["other"]
        assert refill["heading"].endswith(" à remplir") and refill["n"] == refill["items"] > 0, refill
        assert soon["heading"].startswith(f"{soon['items']} bientôt vides") and soon["items"] > 0, soon
        assert other["hidden"] and other["items"] == 0
        # The first section holds the low or under-half ones, the second the others that empty within 2 days.
        assert all(level <= 50 for level in refill["levels"]) and refill["low"] > 0, refill  # shown rounded
        assert all(level >= 50 for level in soon["levels"]) and soon["low"] == 0, soon
        screenshot(page, f"tournee-sections-{width}x{height}")
    page.check("#show-all")
    page.wait_for_function("() => !document.getElementById('other-section').hidden")
    sections = {s["key"]: s for s in page.evaluate(SECTION_COUNTS)}
    assert sum(s["items"] for s in sections.values()) == len(fleet.ids)
    assert all(s["n"] == s["items"] for s in sections.values()), sections
    assert_clean(rec)


BANNER = """() => {
  const box = document.getElementById('alerts');
  const bottom = box.getBoundingClientRect().bottom - parseFloat(getComputedStyle(box).paddingBottom) + 0.5;
  const items = Array.from(document.querySelectorAll('#alert-list li'));
  const more = document.querySelector('#alert-list .alert-more');
  return { cut: items.filter((n) => n.getBoundingClientRect().bottom > bottom).map((n) => n.textContent),
           names: items.filter((n) => !n.matches('.alert-count, .alert-more')).length,
           counts: Array.from(document.querySelectorAll('#alert-list .alert-count'),
                              (n) => parseInt(n.textContent, 10)),
           more: more ? more.textContent : null,
           lines: new Set(items.map((n) => Math.round(n.getBoundingClientRect().top))).size };
}"""
ATTENTION = """() => {
  const list = document.getElementById('attention-list');
  const items = Array.from(list.children).filter((n) => !n.hidden);
  const last = items[items.length - 1].getBoundingClientRect();
  const item = list.querySelector('.attention-item').getBoundingClientRect();
  return { shown: list.querySelectorAll('.attention-item').length,
           total: Number(document.getElementById('attention').dataset.count),
           gap: list.getBoundingClientRect().bottom - last.bottom, item: item.height,
           overflow: last.bottom > list.getBoundingClientRect().bottom + 0.5 };
}"""


def test_kiosk_banner_says_how_many_it_does_not_name_and_attention_fills_its_box(fleets, open_page) -> None:
    """Issue 23 item 2: no alert cut off silently; whatever fits, then "+N autres"; the attention box full."""
    fleet = fleets(300)
    page, rec = open_page(f"{fleet.url}/?kiosk=1&page_s=600", wait_state="live",
                          viewport={"width": 1920, "height": 1080})
    page.wait_for_selector("#alert-list .alert-count")
    for width, height in SCREENS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function("([w, h]) => innerWidth === w && innerHeight === h", arg=[width, height])
        # The fit runs on the next frame after the resize: wait for the banner to settle without a cut item.
        page.wait_for_function(f"() => ({BANNER})().cut.length === 0", timeout=5000)
        banner = page.evaluate(BANNER)
        total = sum(banner["counts"])
        assert banner["names"] >= 1 and banner["names"] < total, banner
        assert banner["more"] == f"+{total - banner['names']} autres", banner
        assert banner["lines"] == 2, banner  # both lines used: what fits is shown
        attention = page.evaluate(ATTENTION)
        assert attention["total"] > attention["shown"] >= 2 and not attention["overflow"], attention
        # Full: no room left for one more item below the "+N" line.
        assert attention["gap"] < attention["item"] + 1, attention
        screen(page, f"kiosk-banner-300-{width}x{height}")
    assert_clean(rec)

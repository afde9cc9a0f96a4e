"""Compliance in a real Chromium: the compliance view, the census form, the weekly report, test mode, the ward's kiosk.

Seeded through the HTTP API of a real server in Paris time: doses with explicit timestamps in the two weeks
before this one, door entries, the census; the rates shown are worked out by hand (the same week as
tests/api/test_compliance.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from devkit.servers import ServerProcess
from tests.helpers.auth import bearer
from tests.helpers.browser import ARTIFACTS, Recorded, normalized
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_config_text

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

PARIS = ZoneInfo("Europe/Paris")
MAINTENANCE = "token-maintenance-0000"
# Ward A (ICU, 10 opportunities per patient-day, target 80 %) last week, Monday first: hands, entries, census.
HANDS = [50, 60, 70, 80, 90, 40, 40]
ENTRIES = [100, 100, 100, 100, 100, 100, 50]
CENSUS = [10, 10, 10, 10, 10, 10, 8]
DAY_RATES = ["50", "60", "70", "80", "90", "40", "50"]  # hands ÷ (census × 10) × 100
# 430 hands ÷ 680 opportunities, 430 ÷ 650 entries, 645 ml ÷ 68 patient-days.
WEEK_RATE, ENTRY_RATE, ML_PER_PATIENT_DAY = "63.24", "66.15", "9.49"
EARLIER_HANDS, EARLIER_CENSUS, EARLIER_RATE = 30, 10, "30"  # the week before: 210 ÷ 700
# Runs before the page's scripts: notes whether the page ever shows ward B's dispenser by its id ("b12").
WATCH_IDS = """new MutationObserver(() => {
  if (document.body && /Offline: b12\\b/.test(document.body.textContent)) window.idShown = true;
}).observe(document, {subtree: true, childList: true, characterData: true});"""


def paris_today() -> date:
    return datetime.now(PARIS).date()


def last_monday() -> date:
    today = paris_today()
    return today - timedelta(days=today.weekday() + 7)


def iso_week(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def stamp(day: date, hour: int, minute: int = 0, second: int = 0) -> str:
    """A local time in Paris, as the UTC timestamp a dispenser sends."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PARIS).astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Ward:
    """A real server on the wards config (site > ward-a: entree, cafeteria; ward-b: b12) and its HTTP API."""

    process: ServerProcess

    @property
    def url(self) -> str:
        return self.process.url

    def post(self, dispenser: str, body: Any) -> dict:
        resp = requests.post(self.url + "/mettre_a_jour_donnees", json=body, headers=bearer(TOKENS[dispenser]),
                             timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def census(self, group: str, day: date, patients: int) -> None:
        resp = requests.put(f"{self.url}/api/groups/{group}/census/{day}", json={"patients": patients},
                            headers=bearer(ADMIN), timeout=10)
        assert resp.status_code == 200, resp.text

    def mode(self, dispenser: str, mode: str) -> None:
        resp = requests.post(f"{self.url}/api/dispensers/{dispenser}/mode", json={"mode": mode},
                             headers=bearer(MAINTENANCE), timeout=10)
        assert resp.status_code == 200, resp.text


def start_ward(directory: Path) -> Ward:
    """A fresh server (the dispensers stay online for an hour after their last contact)."""
    config = directory / "config.toml"
    config.write_text(ward_config_text(async_mode="eventlet", timezone="Europe/Paris", offline_after_s=3600,
                                       maintenance_token=MAINTENANCE), encoding="utf-8")
    return Ward(ServerProcess(config).start())


def seed_two_weeks(ward: Ward) -> None:
    """Last week as in the module docstring, and the week before at 30 %."""
    monday = last_monday()
    for i, (hands, entries, census) in enumerate(zip(HANDS, ENTRIES, CENSUS, strict=True)):
        day = monday + timedelta(days=i)
        # Just after and just before local midnight: each lands in its own local day.
        ward.post("entree", [{"hands_detected": 20, "gel_used": 30.0, "timestamp": stamp(day, 0, 0, 30)},
                             {"entries": entries, "timestamp": stamp(day, 12)}])
        ward.post("cafeteria", {"hands_detected": hands - 20, "gel_used": 1.5 * (hands - 20),
                                "timestamp": stamp(day, 23, 59, 30)})
        ward.census("ward-a", day, census)
        earlier = day - timedelta(days=7)
        ward.post("entree", {"hands_detected": EARLIER_HANDS, "gel_used": 1.5 * EARLIER_HANDS,
                             "timestamp": stamp(earlier, 12)})
        ward.census("ward-a", earlier, EARLIER_CENSUS)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ward]:
    """One server for the read-only tests: two weeks seeded, ward B's dispenser never heard from, and this week's
    census and a few doses so far (for the screenshots)."""
    ward = start_ward(tmp_path_factory.mktemp("seeded"))
    try:
        seed_two_weeks(ward)
        today = paris_today()
        for day in (today - timedelta(days=i) for i in range(today.weekday() + 1)):
            ward.census("ward-a", day, 9)
            ward.post("entree", [{"hands_detected": 55, "gel_used": 82.5, "timestamp": stamp(day, 0, 1)},
                                 {"entries": 80, "timestamp": stamp(day, 0, 2)}])
        yield ward
    finally:
        ward.process.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Ward]:
    """A server of its own, for a test that writes."""
    ward = start_ward(tmp_path)
    try:
        yield ward
    finally:
        ward.process.stop()


def assert_clean(rec: Recorded) -> None:
    """No console error (a CSP violation would be one) and no dialog."""
    assert not rec.errors, rec.errors
    assert not rec.dialogs, rec.dialogs


def save(page: Any, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def cell(page: Any, table: str, attr: str, value: str, col: str) -> Any:
    return page.locator(f"#{table} tr[{attr}='{value}'] [data-col='{col}']")


def wait_data(page: Any, selector: str, value: str, timeout_s: float = 15) -> None:
    """Wait until the element's data-value is `value` (as the server wrote the number)."""
    page.wait_for_function("([s, v]) => { const n = document.querySelector(s); return n && n.dataset.value === v; }",
                           arg=[selector, value], timeout=timeout_s * 1000)


def test_compliance_view_shows_the_known_rates_of_a_seeded_week(seeded, open_page) -> None:
    monday = last_monday()
    page, rec = open_page(f"{seeded.url}/conformite?group=ward-a", wait_state="live",
                          viewport={"width": 1440, "height": 900})
    wait_data(page, "#last-week-rate", WEEK_RATE)
    assert normalized(page.text_content("#last-week-rate")) == "63,2 %"
    assert normalized(page.text_content("#last-week-status")) == "Sous l’objectif (80 %)"
    assert page.get_attribute("#last-week", "class").split().count("rate-below") == 1
    assert normalized(page.text_content("#last-week-entry")).endswith("66,2 %")
    assert normalized(page.text_content("#target")) == "Objectif : 80 %"
    # Gel per patient-day of the last complete week beside the HAND-KISS median of an ICU.
    assert page.get_attribute("#ml-per-patient-day", "data-value") == ML_PER_PATIENT_DAY
    assert normalized(page.text_content("#hand-kiss")) == "Référence HAND-KISS (réanimation) : 137 ml"
    assert normalized(page.text_content("#hand-kiss-ratio")) == "soit 7 % de la médiane de référence"  # 9.49 ÷ 137
    # The weeks: last week and the one before, with their rates; day by day, the known rates.
    week = f"#compliance-weeks tr[data-week='{iso_week(monday)}']"
    assert page.get_attribute(f"{week} [data-col='compliance']", "data-value") == WEEK_RATE
    assert normalized(page.text_content(f"{week} [data-col='patients']")) == "68"
    earlier = f"#compliance-weeks tr[data-week='{iso_week(monday - timedelta(days=7))}'] [data-col='compliance']"
    assert page.get_attribute(earlier, "data-value") == EARLIER_RATE
    for i, rate in enumerate(DAY_RATES):
        day = (monday + timedelta(days=i)).isoformat()
        assert cell(page, "compliance-days", "data-start", day, "compliance").get_attribute("data-value") == rate
        assert page.get_attribute(f"#compliance-days tr[data-start='{day}']", "data-offline") == "false"
    # The trend: one bar per week, the seeded two among them.
    values = json.loads(page.get_attribute("#trend-chart", "data-values"))
    assert values[-3:-1] == [30, 63.24], values
    assert page.is_visible("#census-form")
    assert_clean(rec)
    save(page, "compliance-desktop-1440x900")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()  # as a phone opens it
    wait_data(page, "#last-week-rate", WEEK_RATE)
    page.wait_for_function("() => document.documentElement.scrollWidth <= 390")  # nothing wider than a phone
    # The rate of each day is on screen, not beyond the table's scroll.
    right = page.eval_on_selector_all("#compliance-days [data-col='compliance']",
                                      "cells => Math.max(...cells.map(c => c.getBoundingClientRect().right))")
    assert right <= 390, right
    save(page, "compliance-phone-390x844")
    save(page, "compliance-phone-390x844-screen", full_page=False)


def test_days_with_a_dispenser_offline_are_flagged_never_zero_use(seeded, open_page) -> None:
    # Ward B's only dispenser never called: every day is flagged, its use reads "offline", not 0.
    page, rec = open_page(f"{seeded.url}/conformite?group=ward-b", viewport={"width": 1440, "height": 900})
    day = last_monday().isoformat()
    page.wait_for_selector(f"#compliance-days tr[data-start='{day}']")
    assert page.get_attribute(f"#compliance-days tr[data-start='{day}']", "data-offline") == "true"
    assert cell(page, "compliance-days", "data-start", day, "hands").text_content() == "hors ligne"
    assert "Hors ligne : Salle B12" in cell(page, "compliance-days", "data-start", day, "state").text_content()
    assert normalized(page.text_content("#hand-kiss")) == "Référence HAND-KISS (service conventionnel) : 33 ml"
    assert normalized(page.text_content("#target")) == "Pas d’objectif défini"
    # The site compares its wards, each against its own target.
    page.goto(f"{seeded.url}/conformite?group=site&lang=en")
    page.wait_for_selector("#compliance-groups tr[data-group='ward-b']")
    assert page.get_attribute("#compliance-groups tr[data-group='ward-a'] td:nth-child(3)", "data-value") == WEEK_RATE
    assert "Offline: Salle B12" in page.text_content("#compliance-groups tr[data-group='ward-b'] .col-state")
    # Ward B has no census: the site has no rate (not every hand over ward A's patients), and says why.
    assert normalized(page.text_content("#last-week-status")) == "No rate: census missing for Ward B"
    assert page.text_content("#groups-title") == "Subgroups"
    assert_clean(rec)
    save(page, "compliance-site-desktop")


def test_an_outage_names_the_dispenser_even_when_the_names_come_after_the_rates(seeded, open_page) -> None:
    # The names come with the figures' GET (Socket.IO blocked here), held back until the rates have arrived.
    page, rec = open_page("about:blank", block_socketio=True)
    page.add_init_script(WATCH_IDS)
    held: list[Any] = []
    page.route("**/obtenir_donnees_utilisation*", lambda route: held.append(route))
    page.goto(f"{seeded.url}/conformite?group=ward-b&lang=en")
    page.wait_for_function("""() => performance.getEntriesByType('resource')
        .filter((e) => e.name.includes('/api/compliance')).length === 2""")  # the weeks and the days
    assert held, "the figures' GET was asked for"
    page.unroute("**/obtenir_donnees_utilisation*")
    for route in held:
        route.continue_()
    day = last_monday().isoformat()
    page.wait_for_selector(f"#compliance-days tr[data-start='{day}']")
    assert "Offline: Salle B12" in cell(page, "compliance-days", "data-start", day, "state").text_content()
    assert page.evaluate("() => window.idShown === undefined")  # never "Offline: b12", not even for a moment
    assert_clean(rec)


def test_report_page_shows_the_week_and_the_previous_ones(seeded, open_page) -> None:
    monday = last_monday()
    week = iso_week(monday)
    page, rec = open_page(f"{seeded.url}/rapport?group=ward-a&week={week}", viewport={"width": 794, "height": 1123})
    page.wait_for_function("() => document.documentElement.dataset.loaded === '1'")
    assert page.get_attribute("#report-rate", "data-value") == WEEK_RATE
    assert page.get_attribute("#report-entry-rate", "data-value") == ENTRY_RATE
    assert page.get_attribute("#report-ml", "data-value") == ML_PER_PATIENT_DAY
    assert normalized(page.text_content("#report-hk")) == "Référence HAND-KISS (réanimation) : 137 ml"
    assert page.is_hidden("#report-partial")
    # This week and the eight before it, oldest first; the seeded two with their rates.
    weeks = page.eval_on_selector_all("#report-weeks tbody tr", "rows => rows.map(r => r.dataset.week)")
    assert len(weeks) == 9 and weeks[-1] == week
    assert page.get_attribute(f"#report-weeks tr[data-week='{week}']", "class").split().count("is-current") == 1
    earlier = iso_week(monday - timedelta(days=7))
    assert cell(page, "report-weeks", "data-week", earlier, "compliance").get_attribute("data-value") == EARLIER_RATE
    days = page.eval_on_selector_all("#report-days tbody [data-col='compliance']",
                                     "cells => cells.map(c => c.dataset.value)")
    assert days == DAY_RATES
    assert page.is_visible("#report-dispensers-none")  # ward A's two dispensers were online all week
    csv_link = page.get_attribute("#report-csv", "href")
    assert csv_link == f"/api/report.csv?group=ward-a&week={week}"
    resp = requests.get(seeded.url + csv_link, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert page.is_visible("#report-print")
    assert_clean(rec)
    save(page, "report-794x1123")
    page.emulate_media(media="print")
    assert page.is_hidden("#report-print") and page.is_hidden("#report-prev")  # no navigation on paper
    save(page, "report-print-794x1123")
    pdf = page.pdf(path=str(ARTIFACTS / "report.pdf"), format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1  # a ward: one A4 page
    # This week's report: provisional, the days so far (55 hands a day ÷ 9 patients × 10 opportunities).
    page.emulate_media(media="screen")
    page.goto(f"{seeded.url}/rapport?group=ward-a")
    page.wait_for_function("() => document.documentElement.dataset.loaded === '1'")
    assert page.is_visible("#report-partial")
    assert page.get_attribute("#report-rate", "data-value") == "61.11"
    assert page.get_attribute("#report-week", "data-week") == iso_week(paris_today())
    save(page, "report-this-week-794x1123")
    # The site's report lists ward B's dispenser, silent all week.
    page.goto(f"{seeded.url}/rapport?group=site&week={week}&lang=en")
    page.wait_for_function("() => document.documentElement.dataset.loaded === '1'")
    assert page.is_visible("#report-dispensers tr[data-id='b12']")
    assert "7 d" in page.text_content("#report-dispensers tr[data-id='b12'] .col-offline")
    assert page.is_visible("#report-groups tr[data-group='ward-a']")
    assert normalized(page.text_content("#report-rate-status")) == "No rate: census missing for Ward B"
    assert page.get_attribute("#report-rate", "data-value") == ""
    save(page, "report-site-794x1123")


def test_census_form_saves_and_the_figure_updates_live(fresh, open_page) -> None:
    today = paris_today()
    fresh.post("entree", {"hands_detected": 6, "gel_used": 9.0})
    fresh.post("entree", {"hands_detected": 14, "gel_used": 21.0, "timestamp": stamp(last_monday(), 12)})
    page, rec = open_page(f"{fresh.url}/conformite?group=ward-a", wait_state="live",
                          viewport={"width": 390, "height": 844})
    rate = f"#compliance-days tr[data-start='{today}'] [data-col='compliance']"
    page.wait_for_selector(rate)
    assert page.text_content(rate) == "—"  # no census yet: no rate, never a made-up one
    assert page.is_visible("#census-token-row")
    assert page.input_value("#census-date") == today.isoformat()
    # A wrong token is refused and asked again.
    page.fill("#census-patients", "3")
    page.fill("#census-token", "not-a-token-at-all-0000")
    page.click("#census-save")
    page.wait_for_function("() => document.getElementById('census-status').dataset.kind === 'error'")
    assert page.text_content("#census-status") == "Jeton refusé : saisissez-le à nouveau"
    assert page.is_visible("#census-token-row")
    # The maintenance token: saved, and today's rate appears (6 hands ÷ 3 patients × 10 opportunities).
    page.fill("#census-token", MAINTENANCE)
    page.click("#census-save")
    wait_data(page, rate, "20")
    assert normalized(page.text_content("#census-status")).startswith("Enregistré : 3 patients le ")
    assert page.is_hidden("#census-token-row")
    # Live: a use pushed by the server moves the rate (the slow poll is a minute away).
    fresh.post("entree", {"hands_detected": 3, "gel_used": 4.5})
    wait_data(page, rate, "30", timeout_s=20)
    # The CSV import: a bad line is named and nothing is saved; a good file fills last week.
    page.set_input_files("#census-file", files=[{"name": "bad.csv", "mimeType": "text/csv",
                                                  "buffer": b"date,patients\n2026-01-05,4\n2026-01-06,many\n"}])
    page.click("#census-import")
    page.wait_for_function("() => document.getElementById('census-status').dataset.kind === 'error'")
    assert "line 3" in page.text_content("#census-status")
    days = [last_monday() + timedelta(days=i) for i in range(7)]
    good = "date,patients\n" + "".join(f"{d},2\n" for d in days)
    page.set_input_files("#census-file", files=[{"name": "week.csv", "mimeType": "text/csv", "buffer": good.encode()}])
    page.click("#census-import")
    wait_data(page, "#last-week-rate", "10")  # 14 hands ÷ (7 days × 2 patients × 10)
    assert normalized(page.text_content("#census-status")).startswith("7 jours importés")
    # The token is kept in this browser (localStorage, no cookie) for the next visit.
    assert page.context.cookies() == []
    page.reload()
    page.wait_for_selector(rate)
    assert page.is_hidden("#census-token-row") and page.is_visible("#census-forget")
    # The console logs the answers refused on purpose (401, 400), nothing else.
    assert [e for e in rec.errors if "status of 401" not in e and "status of 400" not in e] == [], rec.errors
    assert not rec.dialogs


def test_a_test_mode_dispenser_shows_its_badge_and_its_presses_do_not_count(fresh, open_page) -> None:
    fresh.post("entree", {"hands_detected": 2, "gel_used": 3.0})
    page, rec = open_page(f"{fresh.url}/", wait_state="live")
    page.wait_for_selector(".dispenser[data-id='b12']")
    fresh.mode("b12", "test")  # the page is open: the new mode comes by push
    badge = ".dispenser[data-id='b12'] .badge"
    page.wait_for_function("s => document.querySelector(s) && document.querySelector(s).textContent === 'Mode test'",
                           arg=badge)
    assert "is-test" in page.get_attribute(".dispenser[data-id='b12']", "class")
    hands = int(page.get_attribute("#hands-detected", "data-value"))
    # An installer's press, then a real use: once the real one is on screen, the press would be too if it counted.
    fresh.post("b12", {"hands_detected": 5, "gel_used": 7.5})
    fresh.post("entree", {"hands_detected": 1, "gel_used": 1.5})
    page.wait_for_function("v => Number(document.getElementById('hands-detected').dataset.value) === v", arg=hands + 1)
    assert page.text_content(".dispenser[data-id='b12'] .figure-hands") == "0"
    page.click("#view-table")  # rows built now, from the figures as they are now
    assert page.text_content("#dispenser-rows tr[data-id='b12'] .col-status") == "Mode test"
    assert page.text_content("#dispenser-rows tr[data-id='b12'] .col-seen") != "jamais vu"  # its press was seen
    save(page, "test-mode-desktop", full_page=False)
    # Ward B's figures do not count it either.
    answer = requests.get(f"{fresh.url}/api/compliance?group=ward-b", timeout=10).json()
    assert answer["rows"][-1]["hands"] == 0
    # The kiosk of its ward, in English; back to live mode, the badge goes (pushed).
    page.goto(f"{fresh.url}/?kiosk=1&group=ward-b&lang=en")
    tile = ".dispenser[data-id='b12'] .tile-badge"
    page.wait_for_function("s => document.querySelector(s) && document.querySelector(s).textContent === 'Test mode'",
                           arg=tile)
    fresh.mode("b12", "live")
    page.wait_for_function("s => document.querySelector(s).textContent !== 'Test mode'", arg=tile)
    assert "is-test" not in page.get_attribute(".dispenser[data-id='b12']", "class")
    assert_clean(rec)


def test_the_kiosk_of_a_ward_shows_its_compliance_today(fresh, open_page) -> None:
    fresh.census("ward-a", paris_today(), 5)
    fresh.post("entree", {"hands_detected": 10, "gel_used": 15.0})
    page, rec = open_page(f"{fresh.url}/?kiosk=1&group=ward-a", wait_state="live",
                          viewport={"width": 1280, "height": 800})
    wait_data(page, "#kiosk-compliance", "20")  # 10 hands ÷ (5 patients × 10 opportunities)
    assert normalized(page.text_content("#kiosk-compliance")) == "Observance aujourd’hui : 20,0 % · objectif 80 %"
    assert "rate-below" in page.get_attribute("#kiosk-compliance", "class")
    fresh.post("cafeteria", {"hands_detected": 35, "gel_used": 52.5})
    wait_data(page, "#kiosk-compliance", "90", timeout_s=20)  # pushed, then refreshed (throttled)
    assert "rate-ok" in page.get_attribute("#kiosk-compliance", "class")
    assert page.evaluate("() => document.scrollingElement.scrollHeight <= innerHeight")
    save(page, "kiosk-compliance-1280x800", full_page=False)
    # A ward without a census today shows no rate.
    page.goto(f"{fresh.url}/?kiosk=1&group=ward-b")
    page.wait_for_function("() => Number(document.getElementById('kiosk-compliance').dataset.refreshed) >= 1")
    assert page.is_hidden("#kiosk-compliance")
    assert_clean(rec)

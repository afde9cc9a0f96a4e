"""Issue 23 item 3 in a real Chromium: a whole fleet of 36 wards without a census. The compliance page and the
weekly report name the missing wards once above the tables, each row only counts them; the printed report of a
ward fits one A4 page, a site's two (the PDF's pages counted)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devkit.servers import ServerProcess
from tests.helpers.browser import ARTIFACTS
from tools.fleet_layout import layout, write_fleet

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

N = 360  # 36 wards of 10
SCREENS = ({"width": 1920, "height": 1080}, {"width": 1280, "height": 800}, {"width": 390, "height": 844})


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on 36 wards with opportunities set and no census, every dispenser heard from once."""
    directory = tmp_path_factory.mktemp("hospital")
    config, tokens = write_fleet(directory, N, {"database": "sqlite:///usage.db", "async_mode": "eventlet",
                                                "timezone": "Europe/Paris", "offline_after_s": 3600})
    text = re.sub(r'(id = "ward-\d+"\n)', r'\1opportunities_per_patient_day = 10\nward_type = "regular"\n',
                  config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")
    process = ServerProcess(config).start()
    try:
        with requests.Session() as http:
            for token in tokens.values():
                resp = http.post(process.url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
                assert resp.status_code == 200, resp.text
        yield process.url
    finally:
        process.stop()


def ward_names() -> list[str]:
    groups, _ = layout(N)
    return [g["name"] for g in groups if g["id"].startswith("ward-")]


def loaded(page: Any) -> None:
    page.wait_for_function("() => Number(document.documentElement.dataset.loaded || 0) >= 1")


def pdf_pages(page: Any, name: str) -> int:
    """Print the page to an A4 PDF (saved under tests/artifacts/) and count its pages."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.emulate_media(media="print")
    pdf = page.pdf(path=str(ARTIFACTS / f"{name}.pdf"), format="A4", print_background=True)
    page.emulate_media(media="screen")
    assert pdf.startswith(b"%PDF")
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


def state_cells(page: Any, table: str) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody td[data-col='state']", "ns => ns.map(n => n.textContent)")


@pytest.mark.parametrize("path", ["/conformite", "/rapport"])
def test_missing_wards_are_named_once_above_the_tables(hospital: str, open_page, path: str) -> None:
    names = ward_names()
    assert len(names) == 36
    for viewport in SCREENS:
        page, rec = open_page(hospital + path, viewport=viewport)
        loaded(page)
        note = page.text_content("#census-missing")
        assert page.is_visible("#census-missing") and "36 services" in note, note
        listed = note.split(" : ", 1)[1].split(", ")
        assert sorted(listed) == sorted(names), listed
        tables = ("compliance-weeks", "compliance-days") if path == "/conformite" else ("report-weeks", "report-days")
        cells = [c for t in tables for c in state_cells(page, t)]
        assert any("36 services" in c for c in cells), cells
        assert not [c for c in cells if any(n in c for n in names)], cells  # no row names a ward
        status = page.text_content("#report-rate-status" if path == "/rapport" else "#this-week-status")
        assert status == "Pas de taux : recensement manquant pour 36 services", status
        height = page.evaluate("() => document.scrollingElement.scrollHeight")
        assert height < 4000, height  # was 8,600-9,700 px with 36 names per row
        page.screenshot(path=str(ARTIFACTS / f"missing-census{path.replace('/', '-')}-{viewport['width']}x"
                                             f"{viewport['height']}.png"), full_page=True)
        assert not rec.errors, rec.errors


@pytest.mark.parametrize(("group", "most"), [(None, 2), ("site", 2), ("bat-a", 2), ("ward-001", 1)])
def test_printed_report_fits_a4(hospital: str, open_page, group: str | None, most: int) -> None:
    """A ward's report on one A4 page, a site's (or a building's, or the whole fleet's) on two."""
    query = f"?group={group}" if group else ""
    page, rec = open_page(f"{hospital}/rapport{query}", viewport={"width": 794, "height": 1123})
    loaded(page)
    pages = pdf_pages(page, f"report-a4-{group or 'all'}")
    assert 1 <= pages <= most, pages
    assert not rec.errors, rec.errors


def test_days_before_the_first_use_say_no_dispensers_yet(hospital: str, open_page) -> None:
    """Issue 23 item 5: the fleet counted its first uses today: the earlier days and weeks say "no dispensers yet",
    with no zero of hands, no offline flag and no missing census."""
    page, rec = open_page(hospital + "/conformite", viewport=SCREENS[0])
    loaded(page)
    rows = page.eval_on_selector_all("#compliance-days tbody tr", """rs => rs.map(r => ({
        start: r.dataset.start, hands: r.querySelector("[data-col='hands']").textContent,
        state: r.querySelector("[data-col='state']").textContent }))""")
    today, earlier = rows[0], rows[1:]
    assert today["hands"] == str(N) and "36 services" in today["state"], today
    assert earlier and all(r == {"start": r["start"], "hands": "—",
                                 "state": "Pas encore de distributeur"}
                           for r in earlier), earlier
    weeks = state_cells(page, "compliance-weeks")
    assert weeks[1:] == ["Pas encore de distributeur"] * (len(weeks) - 1), weeks
    assert page.text_content("#last-week-status") == "Pas encore de distributeur"
    assert not rec.errors, rec.errors

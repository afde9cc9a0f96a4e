"""The compliance and weekly report pages as served (Flask test client): headers, markup, settings, refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from tests.helpers.wards import ward_app

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; "
          "form-action 'self'")


class Page(HTMLParser):
    """Start tags with their attributes, ids, and the text of the settings block."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.settings_text = ""
        self._in_settings = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_settings = dict(attrs).get("id") == "dashboard-settings"

    def handle_data(self, data: str) -> None:
        if self._in_settings:
            self.settings_text += data

    def handle_endtag(self, tag: str) -> None:
        self._in_settings = False

    @property
    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if a.get("id")}

    @property
    def settings(self) -> dict:
        return json.loads(self.settings_text)


@pytest.fixture
def wards(tmp_path) -> Iterator[Flask]:
    with ward_app(tmp_path, timezone="Europe/Paris") as app:
        yield app


@pytest.mark.parametrize("url", ["/conformite?group=ward-a", "/conformite", "/rapport?group=site&week=2026-W13",
                                 "/rapport"])
def test_pages_are_served_with_the_policy_and_no_inline_code(wards, url: str) -> None:
    client = wards.test_client()
    resp = client.get(url)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert resp.headers["Content-Security-Policy"] == POLICY
    page = Page(resp.get_data(as_text=True))
    for tag, attrs in page.tags:
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        if tag == "script":
            assert attrs.get("src") or attrs.get("type") == "application/json", attrs
    assets = [a.get("src") or a.get("href") for t, a in page.tags
              if t == "script" and a.get("src") or t == "link" and a.get("rel") == "stylesheet"]
    entry = "/static/js/report/main.js" if url.startswith("/rapport") else "/static/js/compliance/main.js"
    assert [a.split("?")[0] for a in assets if "/static/js/" in a] == [entry], assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_the_compliance_page_knows_its_group_and_today(wards) -> None:
    page = Page(wards.test_client().get("/conformite?group=ward-a&lang=en").get_data(as_text=True))
    settings = page.settings
    assert (settings["group"], settings["lang"], settings["kiosk"]) == ("ward-a", "en", False)
    assert settings["today"] == datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
    assert settings["strings"]["compliance_title"] == "Hand-hygiene compliance"
    assert {"census-form", "census-file", "trend-chart", "compliance-days", "compliance-weeks", "hand-kiss",
            "this-week-rate", "last-week-rate"} <= page.ids
    # Every dispenser, or a group of wards: no census form (a census belongs to a ward).
    for url in ("/conformite", "/conformite?group=site"):
        assert "census-form" not in Page(wards.test_client().get(url).get_data(as_text=True)).ids


def test_the_report_names_its_week(wards) -> None:
    client = wards.test_client()
    settings = Page(client.get("/rapport?group=ward-a&week=2026-W13").get_data(as_text=True)).settings
    assert (settings["week"], settings["week_from"], settings["week_to"]) == ("2026-W13", "2026-03-23", "2026-03-29")
    default = Page(client.get("/rapport").get_data(as_text=True)).settings  # this week
    today = date.fromisoformat(default["today"])
    assert default["week_from"] == (today - timedelta(days=today.weekday())).isoformat()
    page = Page(client.get("/rapport?group=ward-a&week=2026-W13").get_data(as_text=True))
    csv = next(a["href"] for _, a in page.tags if a.get("id") == "report-csv")
    assert csv == "/api/report.csv?group=ward-a&week=2026-W13"


@pytest.mark.parametrize(("url", "status"), [("/conformite?group=nope", 404), ("/rapport?group=nope", 404),
                                             ("/rapport?week=2026-W99", 400), ("/rapport?week=2026-13", 400)])
def test_unknown_groups_and_bad_weeks_are_refused(wards, url: str, status: int) -> None:
    assert wards.test_client().get(url).status_code == status


def test_the_dashboard_links_to_compliance_and_a_ward_kiosk_has_its_rate_box(wards) -> None:
    client = wards.test_client()
    page = Page(client.get("/?group=ward-a").get_data(as_text=True))
    link = next(a["href"] for _, a in page.tags if a.get("id") == "compliance-link")
    assert link.startswith("/conformite?group=ward-a")
    assert "kiosk-compliance" in Page(client.get("/?kiosk=1&group=ward-a").get_data(as_text=True)).ids
    assert "kiosk-compliance" not in Page(client.get("/?kiosk=1").get_data(as_text=True)).ids

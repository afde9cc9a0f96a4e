"""Errors follow the client: a page route answers an HTML page in the user's language, the API answers JSON."""

from __future__ import annotations

import pytest

PAGES = [("/?group=nowhere", 404, "nowhere"), ("/tournee?group=nowhere", 404, "nowhere"),
         ("/conformite?group=nowhere", 404, "nowhere"), ("/rapport?group=nowhere", 404, "nowhere"),
         ("/rapport?week=2026-W99", 400, "2026-W99")]


@pytest.mark.parametrize(("url", "status", "named"), PAGES)
def test_a_page_error_is_a_page_in_french_with_a_way_back(client, url: str, status: int, named: str) -> None:
    resp = client.get(url)
    assert resp.status_code == status and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert '<html lang="fr"' in html and "Retour au tableau de bord" in html
    assert 'id="error-back" href="/?lang=fr"' in html
    assert named in html and "{" not in html.split("<body>")[1]  # the detail, and no JSON
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_a_page_error_speaks_the_browsers_language(client) -> None:
    resp = client.get("/tournee?group=nowhere", headers={"Accept-Language": "en-GB,en;q=0.9"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and '<html lang="en"' in html
    assert "Page not found" in html and "Back to the dashboard" in html


def test_the_page_escapes_what_the_url_carried(client) -> None:
    html = client.get("/?group=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("url", ["/obtenir_donnees_utilisation?group=nowhere", "/api/history?group=nowhere",
                                 "/api/compliance?group=nowhere"])
def test_the_api_keeps_answering_json_even_to_a_browser(client, url: str) -> None:
    resp = client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.status_code in (400, 404) and resp.is_json and resp.get_json()["error"]


def test_an_unknown_url_is_a_page_for_a_browser_and_json_for_a_program(client) -> None:
    browser = client.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 404 and browser.mimetype == "text/html" and 'id="error-back"' in browser.text
    for accept in (None, "*/*", "application/json"):
        program = client.get("/no-such-page", headers={"Accept": accept} if accept else {})
        assert program.status_code == 404 and program.is_json

"""The dashboard page as served: language, CSP, kiosk markup, static files and the version endpoint."""

from __future__ import annotations

import json
import posixpath
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.web.views import content_hash
from devkit.servers import ROOT

STATIC = ROOT / "app" / "static"
TRANSLATIONS = ROOT / "app" / "translations"
HEADINGS = {"fr": "Utilisation du gel hydroalcoolique", "en": "Hand sanitizer usage"}
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; "
          "form-action 'self'")
REQUIRED_CSP = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                "base-uri 'none'", "frame-ancestors 'self'", "connect-src 'self'"]


class Tags(HTMLParser):
    """Every start tag with its attributes, plus the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


@pytest.fixture
def config_path(write_config) -> Path:
    """The page does not depend on the database: SQLite only here."""
    return write_config()


def parse(html: str) -> Tags:
    """Parse a page into its tags."""
    tags = Tags()
    tags.feed(html)
    return tags


def html_lang(html: str) -> str:
    """The lang attribute of <html>."""
    return re.search(r'<html lang="([a-z]+)"', html).group(1)


def settings_of(html: str) -> dict:
    """The JSON settings block the script reads."""
    tags = parse(html)
    index = [attrs.get("id") for tag, attrs in tags.tags if tag == "script"].index("dashboard-settings")
    return json.loads(tags.scripts[index])


@pytest.mark.parametrize("query,accept,expected", [
    ("", None, "fr"),
    ("?lang=en", None, "en"),
    ("", "en-US,en;q=0.9", "en"),
    ("", "en", "en"),
    ("?lang=fr", "en-US,en;q=0.9", "fr"),
    ("", "de-DE,de;q=0.9", "fr"),
    ("", "de-DE,en;q=0.5", "en"),
    ("", "fr-CA,en;q=0.8", "fr"),
    ("?lang=xx", "en", "en"),
])
def test_language(client, query: str, accept: str | None, expected: str) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    resp = client.get("/" + query, headers=headers)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html_lang(html) == expected
    assert HEADINGS[expected] in html
    assert settings_of(html)["lang"] == expected
    assert "Accept-Language" in resp.headers.get("Vary", "")


def test_csp_header_and_no_inline_code(client) -> None:
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert csp == POLICY
    for directive in REQUIRED_CSP:
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    tags = parse(resp.get_data(as_text=True))
    for tag, attrs in tags.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "script":
            assert attrs.get("src") or attrs.get("type") == "application/json", attrs
    assert not any(tag == "style" for tag, _ in tags.tags)


def test_page_loads_nothing_from_elsewhere(client) -> None:
    tags = parse(client.get("/").get_data(as_text=True))
    urls = [attrs.get("src") or attrs.get("href") for tag, attrs in tags.tags if tag in ("script", "link", "a", "img")]
    urls = [u for u in urls if u]
    assert urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//") or url == "data:,", url


def test_static_files_are_served(client) -> None:
    tags = parse(client.get("/").get_data(as_text=True))
    assets = [attrs["src"] for tag, attrs in tags.tags if tag == "script" and attrs.get("src")]
    assets += [attrs["href"] for tag, attrs in tags.tags if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert len(assets) == 4  # two vendored scripts, the entry module, the stylesheet
    for asset in assets:
        resp = client.get(asset)
        assert resp.status_code == 200, asset
        resp.close()


IMPORT = re.compile(r'^import .* from "(\.{1,2}/[\w/]+\.js)";$', re.M)


def imported(client, entry: str) -> set[str]:
    """Every module URL the entry module reaches through its static imports, fetched as the browser would."""
    seen, todo = set(), [entry.split("?")[0]]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        resp = client.get(url)
        assert resp.status_code == 200, url
        # Imports carry no ?v=: they stay fresh because every static file is revalidated (base.html says why).
        assert "no-cache" in resp.headers["Cache-Control"] and resp.headers.get("ETag"), url
        base = url.rsplit("/", 1)[0] + "/"
        todo += [posixpath.normpath(base + rel) for rel in IMPORT.findall(resp.get_data(as_text=True))]
        resp.close()
    return seen


def test_each_page_has_one_entry_module_that_reaches_its_modules(client) -> None:
    entries = {}
    for url in ("/", "/?kiosk=1", "/tournee", "/conformite", "/rapport", "/journal"):
        tags = parse(client.get(url).get_data(as_text=True))
        scripts = [attrs for tag, attrs in tags.tags if tag == "script" and attrs.get("src")]
        modules = [a["src"] for a in scripts if a.get("type") == "module"]
        assert len(modules) == 1, (url, scripts)
        assert all(a["src"].startswith("/static/vendor/") for a in scripts if a.get("type") != "module"), url
        entries[url] = modules[0]
    reached = {url: imported(client, entry) for url, entry in entries.items()}
    assert len(reached["/"]) > 10 and "/static/js/dashboard/render.js" in reached["/"]
    assert "/static/js/compliance/census.js" in reached["/conformite"]
    every = {"/static/js/" + p.relative_to(STATIC / "js").as_posix() for p in (STATIC / "js").rglob("*.js")}
    assert set().union(*reached.values()) == every  # no module left unused


def test_no_script_hangs_names_on_window_and_none_is_long() -> None:
    for path in (STATIC / "js").rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert "window.Gel" not in text and "globalThis." not in text or path.name == "vendor.js", path
        assert len(text.splitlines()) <= 250, path


def test_vendored_libraries_with_licences() -> None:
    vendor = STATIC / "vendor"
    assert "Chart.js v4." in (vendor / "chart.umd.min.js").read_text()[:200]
    assert "Socket.IO v4." in (vendor / "socket.io.min.js").read_text()[:200]
    assert "MIT" in (vendor / "chart.js.LICENSE.md").read_text()
    assert "MIT" in (vendor / "socket.io-client.LICENSE").read_text() or "Permission is hereby granted" in (
        vendor / "socket.io-client.LICENSE").read_text()
    readme = (vendor / "README.md").read_text()
    assert "4.6.1" in readme and "4.8.4" in readme


def test_hooks_and_desktop_controls(client) -> None:
    html = client.get("/").get_data(as_text=True)
    for hook in ('id="gel-used"', 'id="hands-detected"', 'id="connection-status"', 'data-state="offline"',
                 'id="alerts"', 'id="dispenser-list"', 'id="realtime-chart"', 'id="history-chart"', 'id="csv-link"',
                 'data-range="today"', 'data-range="7d"', 'data-range="30d"'):
        assert hook in html, hook
    assert 'class="desktop"' in html
    assert settings_of(html)["kiosk"] is False


def test_kiosk_markup_has_no_controls(client) -> None:
    html = client.get("/?kiosk=1").get_data(as_text=True)
    assert 'class="kiosk"' in html
    for control in ("csv-link", "data-range", "history-chart", "reload-notice"):
        assert control not in html, control
    for hook in ('id="gel-used"', 'id="hands-detected"', 'id="connection-status"', 'id="realtime-chart"',
                 'id="alerts"'):
        assert hook in html, hook
    assert settings_of(html)["kiosk"] is True


def test_version_endpoint(client, app) -> None:
    resp = client.get("/api/version")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    version = resp.get_json()["version"]
    assert re.fullmatch(r"[0-9][\w.]*\+[0-9a-f]{12}", version), version
    assert client.get("/api/version").get_json()["version"] == version
    html = client.get("/").get_data(as_text=True)
    assert f'data-version="{version}"' in html
    assert settings_of(html)["version"] == version
    assert f"v={version.replace('+', '%2B')}" in html  # static URLs change with the version


def test_content_hash_follows_the_files(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("one")
    first = content_hash(tmp_path)
    assert content_hash(tmp_path) == first
    (tmp_path / "js" / "a.js").write_text("two")
    assert content_hash(tmp_path) != first
    assert content_hash(tmp_path / "missing") == content_hash(None)


def test_settings_carry_the_script_strings(client) -> None:
    settings = settings_of(client.get("/?lang=en").get_data(as_text=True))
    assert settings["locale"] == "en-US" and settings["poll_ms"] == 5000
    strings = settings["strings"]
    assert strings["state_polling"] == "Refreshing every {s} s"  # the script fills {s} from poll_ms
    assert (strings["alert_low"], strings["ago_min"]) == ("{name}: reservoir almost empty", "{n} min ago")
    french = settings_of(client.get("/?lang=fr").get_data(as_text=True))
    assert french["strings"]["state_polling"] == "Actualisation toutes les {s} s" and french["poll_ms"] == 5000


def test_every_language_has_every_string() -> None:
    catalogs = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in TRANSLATIONS.glob("*.json")}
    assert set(catalogs) == {"fr", "en"}
    for catalog in catalogs.values():
        assert set(catalog) == set(catalogs["fr"]) and set(catalog["js"]) == set(catalogs["fr"]["js"])
        assert all(isinstance(text, str) and text for text in catalog["js"].values())

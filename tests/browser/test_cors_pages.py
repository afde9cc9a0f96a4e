"""Issue 23 item 7 in a real Chromium: a page on another origin listed in `cors_origins` reads every GET route of
the API (the poll and the health check too); a page on an origin not listed reads none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.wards import ward_app, ward_config_text

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]

# The HTML pages and what no page reads: the rest of the GET routes must be readable from another origin.
NOT_READ_ACROSS = {"views.index", "views.conformite", "views.rapport", "views.tournee", "views.journal", "static",
                   "prometheus_metrics"}
FETCH_ALL = """async (paths) => {
  const out = {};
  for (const path of paths) {
    try {
      const resp = await fetch(path, { cache: 'no-store' });
      await resp.arrayBuffer();
      out[path] = resp.status;
    } catch (err) {
      out[path] = 'blocked';
    }
  }
  return out;
}"""


def get_routes(tmp_path: Path) -> list[str]:
    """Every GET route of the app, from its own URL map, with a real dispenser and group in the variable parts."""
    tmp_path.mkdir(exist_ok=True)
    with ward_app(tmp_path) as app:
        rules = [r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and r.endpoint not in NOT_READ_ACROSS]
    return sorted(r.replace("<dispenser:dispenser_id>", "entree").replace("<group_id>", "ward-a") for r in rules)


class Blank(BaseHTTPRequestHandler):
    """Another site on this machine: one blank page."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>elsewhere</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origins() -> Iterator[list[str]]:
    """Two real HTTP servers on loopback (a page served by Playwright itself counts as public to Chromium's
    local network rules, which refuse it before CORS is asked)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Blank) for _ in range(2)]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield [f"http://127.0.0.1:{srv.server_address[1]}" for srv in servers]
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def open_from(open_page, origin: str) -> object:
    """A blank page of `origin`."""
    return open_page(origin + "/")


def test_every_get_route_is_readable_from_a_listed_origin(server_factory, open_page, origins, tmp_path: Path) -> None:
    kiosk, elsewhere = origins
    config = tmp_path / "config.toml"
    config.write_text(ward_config_text(async_mode="eventlet", cors_origins=[kiosk]), encoding="utf-8")
    server = server_factory(config)
    paths = get_routes(tmp_path / "app")
    for needed in ("/api/export.csv", "/api/version", "/api/dispensers/entree/refills", "/obtenir_donnees_utilisation",
                   "/api/history", "/api/compliance", "/healthz"):
        assert needed in paths
    page, _rec = open_from(open_page, kiosk)
    got = page.evaluate(FETCH_ALL, [server.url + p for p in paths])
    blocked = [p for p, status in got.items() if status == "blocked"]
    assert blocked == [], (blocked, _rec.errors)
    # Read, not only sent: the answers without a token (audit, whoami) are readable 401s, the others 200.
    assert {p: s for p, s in got.items() if s not in (200, 401)} == {}
    assert got[server.url + "/api/export.csv"] == 200 and got[server.url + "/api/version"] == 200

    # An origin not listed reads nothing.
    other, _ = open_from(open_page, elsewhere)
    denied = other.evaluate(FETCH_ALL, [server.url + p for p in paths])
    assert set(denied.values()) == {"blocked"}, denied

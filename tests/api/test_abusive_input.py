"""Bad input and abuse: formula-safe CSV, rate limit and future dose times, deep JSON, headers."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from datetime import UTC, datetime

import pytest

from app import create_app
from app.config import load_config
from app.domain.sheets import inert
from app.store import Event
from app.store.reads import export_events
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS, config_text

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


@pytest.fixture
def make_client(tmp_path):
    """make_client(**server) -> a test client of an app with those extra [server] keys (all disposed after)."""
    apps = []

    def make(text: str | None = None, **server):
        path = tmp_path / f"config-{len(apps)}.toml"
        path.write_text(text or config_text(database=f"sqlite:///usage-{len(apps)}.db", **server), encoding="utf-8")
        apps.append(create_app(load_config(path)))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["usage_store"].engine.dispose()


def rows_of(resp) -> list[list[str]]:
    return list(csv.reader(io.StringIO(resp.get_data(as_text=True), newline="")))


def test_csv_export_neutralises_every_cell_a_spreadsheet_would_evaluate(client, post):
    body = [{"gel_used": 1, "event_id": f} for f in FORMULAS] + [{"gel_used": 2, "event_id": "plain-id"}]
    assert post(body).status_code == 200
    rows = rows_of(client.get("/api/export.csv"))
    header, data = rows[0], rows[1:]
    ids = {row[header.index("event_id")] for row in data}
    assert ids == {"'" + f for f in FORMULAS} | {"plain-id"}
    for row in data:  # the numbers stay numbers: only text is quoted
        assert float(row[header.index("gel_used_ml")]) in (1.0, 2.0)


def test_only_text_cells_are_quoted():
    assert inert(-1.5) == -1.5 and inert(0) == 0  # a negative figure is data, not a formula
    assert inert("-1.5") == "'-1.5" and inert("2026-11-25T08:00:00Z") == "2026-11-25T08:00:00Z"


def test_dispenser_ids_are_neutralised_in_bucket_exports(make_client):
    text = config_text().replace('id = "b12"', 'id = "-b12"')  # '-' is a safe id character, and a formula's start
    client = make_client(text)
    assert client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=bearer(TOKENS["b12"])).status_code == 200
    rows = rows_of(client.get("/api/export.csv?bucket=day"))
    assert [r[1] for r in rows[1:]] == ["'-b12"]


def test_a_dispenser_over_its_rate_gets_429_with_retry_after(make_client):
    client = make_client(dispenser_events_per_min=60)  # a burst of 60 events, then one a second
    batch = [{"gel_used": 1, "hands_detected": 1}] * 60
    assert client.post("/mettre_a_jour_donnees", json=batch, headers=bearer(TOKENS["entree"])).status_code == 200
    refused = client.post("/mettre_a_jour_donnees", json=batch[:5], headers=bearer(TOKENS["entree"]))
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 10
    assert "retry" in refused.get_json()["error"]
    beat = client.post("/api/dispensers/entree/heartbeat", json={"backlog": 5}, headers=bearer(TOKENS["entree"]))
    assert beat.status_code == 429 and "Retry-After" in beat.headers
    other = client.post("/mettre_a_jour_donnees", json=batch, headers=bearer(TOKENS["cafeteria"]))
    assert other.status_code == 200  # one bucket per dispenser
    figures = client.get("/obtenir_donnees_utilisation?dispenser=entree").get_json()
    assert figures["hands_detected"] == 60  # the refused batch changed nothing
    assert 'gel_requests_rejected_total{reason="rate_limited"} 2.0' in client.get("/metrics").get_data(as_text=True)


def test_the_rate_limit_can_be_turned_off(make_client):
    client = make_client(dispenser_events_per_min=0)
    batch = [{"gel_used": 1}] * 1000
    for _ in range(3):
        assert client.post("/mettre_a_jour_donnees", json=batch, headers=bearer(TOKENS["entree"])).status_code == 200


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def test_dose_times_more_than_five_minutes_ahead_are_refused(post):
    now = time.time()
    ahead = post([{"gel_used": 1, "timestamp": _iso(now + 10 * 60)}])
    assert ahead.status_code == 400 and "5 minutes ahead" in ahead.get_json()["error"]
    assert post([{"gel_used": 1, "timestamp": _iso(now + 4 * 60)}]).status_code == 200


def test_the_future_bound_applies_after_the_clock_correction(post):
    now = time.time()
    # A Pi three days behind says it is 10 minutes ahead of its own clock: 10 minutes ahead of the server.
    behind = {"X-Dispenser-Clock": str(now - 3 * 86400)}
    assert post([{"gel_used": 1, "timestamp": _iso(now - 3 * 86400 + 600)}], headers=behind).status_code == 400
    # A Pi one hour ahead: its "one hour ahead" is the server's now, accepted and dated right.
    fast = {"X-Dispenser-Clock": str(now + 3600)}
    assert post([{"gel_used": 1, "timestamp": _iso(now + 3600), "event_id": "fast"}], headers=fast).status_code == 200


@pytest.mark.parametrize("route", ["/mettre_a_jour_donnees", "/api/dispensers/entree/heartbeat"])
def test_deeply_nested_json_is_a_400(client, route):
    body = "[" * 100_000 + "]" * 100_000
    resp = client.post(route, data=body, content_type="application/json", headers=bearer(TOKENS["entree"]))
    assert resp.status_code == 400 and "nested" in resp.get_json()["error"]


@pytest.mark.parametrize(("method", "route"), [
    ("get", "/"), ("get", "/obtenir_donnees_utilisation"), ("get", "/api/export.csv"), ("get", "/api/history"),
    ("get", "/healthz"), ("get", "/metrics"), ("get", "/nope"), ("post", "/mettre_a_jour_donnees"),
    ("get", "/api/version"),
])
def test_every_answer_carries_the_security_headers(client, method, route):
    resp = getattr(client, method)(route)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in resp.headers["Content-Security-Policy"]


def test_the_pages_csp_allows_no_websocket_to_another_host(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["connect-src"] == "'self'"
    assert "ws:" not in csp and "wss:" not in csp


def test_a_toml_dispenser_known_by_its_digest_posts(make_client):
    token = "a-token-only-the-pi-knows"
    digest = hashlib.sha256(token.encode()).hexdigest()
    client = make_client(config_text().replace(f'token = "{TOKENS["b12"]}"', f'token_sha256 = "{digest}"'))
    assert client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=bearer(token)).status_code == 200
    assert client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=bearer(digest)).status_code == 401
    assert client.post("/api/dispensers/b12/refill", headers=bearer(ADMIN)).status_code == 200


def test_an_export_reads_page_by_page_and_holds_no_connection_meanwhile(app):
    store = app.extensions["usage_store"]
    ts = 1_700_000_000.0
    store.ingest("entree", [Event(gel_ul=1000, hands=1, ts=ts + i // 3, event_id=f"k{i}") for i in range(10)],
                 now=ts + 100)
    got = []
    for row in export_events(store, ts - 1, ts + 10, page=4):  # ties on ts (3 a second) across page ends
        assert store.engine.pool.checkedout() == 0  # the client may take its time: no connection is held
        got.append(row.event_id)
    assert got == [f"k{i}" for i in range(10)]


def test_export_slots_are_bounded_and_given_back(make_client):
    client = make_client(max_exports=1)
    first = client.get("/api/export.csv", buffered=False)  # streaming, not read yet
    busy = client.get("/api/export.csv")
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "30" and "retry" in busy.get_json()["error"]
    first.close()  # the client went away
    assert client.get("/api/export.csv").status_code == 200
    assert client.get("/api/export.csv").status_code == 200  # read to its end: given back as well

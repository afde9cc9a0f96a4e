"""Operations: refills and levels, predictions, alerts, heartbeats, history, CSV export, metrics."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest

from app import create_app
from app.config import load_config
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS


def auth(who: str) -> dict:
    return bearer(ADMIN if who == 'admin' else TOKENS[who])


def entry(client, ident: str = "entree") -> dict:
    data = client.get("/obtenir_donnees_utilisation").get_json()
    return next(d for d in data["dispensers"] if d["id"] == ident)


@pytest.mark.parametrize(("who", "status"), [("entree", 200), ("admin", 200), ("cafeteria", 403)])
def test_refill_permissions(client, post, who, status):
    post({"gel_used": 30, "hands_detected": 1})
    resp = client.post("/api/dispensers/entree/refill", headers=auth(who))
    assert resp.status_code == status
    assert entry(client)["level_pct"] == (100.0 if status == 200 else 90.0)


def test_refill_without_a_known_token_or_for_an_unknown_dispenser(client):
    assert client.post("/api/dispensers/entree/refill").status_code == 401
    unknown = bearer("zzzzzzzzzz")
    assert client.post("/api/dispensers/entree/refill", headers=unknown).status_code == 401
    assert client.post("/api/dispensers/nope/refill", headers=auth("admin")).status_code == 404


def test_level_counts_from_the_last_refill_and_never_goes_below_zero(client, post, totals):
    post([{"gel_used": 100, "hands_detected": 1}] * 4)  # 400 ml from a 300 ml reservoir
    assert entry(client)["level_pct"] == 0.0
    assert entry(client)["low"] is True
    body = client.post("/api/dispensers/entree/refill", headers=auth("entree")).get_json()
    assert body["dispenser"]["level_pct"] == 100.0 and body["dispenser"]["refilled_at"]
    assert totals() == (400, 4)  # a refill changes no usage total
    post({"gel_used": 75, "hands_detected": 1})
    assert entry(client)["level_pct"] == 75.0
    history = client.get("/api/dispensers/entree/refills").get_json()["refills"]
    assert len(history) == 1 and history[0]["gel_used_before"] == 400 and history[0]["by"] == "dispenser"


def test_refill_is_pushed(sio_client, client):
    sio_client.get_received()
    client.post("/api/dispensers/b12/refill", headers=auth("admin"))
    pushed = [m["args"][0] for m in sio_client.get_received() if m["name"] == "donnees_utilisation"]
    assert pushed and pushed[-1]["dispensers"][2]["refilled_at"]


def test_predicted_empty_time_from_the_recent_rate(app, post):
    now = time.time()
    # 30 ml over the last 24 h from a 300 ml reservoir: 270 ml left at 30 ml a day is 9 days.
    post([{"gel_used": 3, "hands_detected": 1, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                          time.gmtime(now - 3600 * h))}
          for h in range(10)])
    payload = app.extensions["figures"].payload(now=now)
    first = payload["dispensers"][0]
    empty = datetime.strptime(first["empty_at"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC).timestamp()
    # Every use lies inside the 24 h window, so the rate is exactly 30 ml a day; the prediction is anchored on the
    # newest dose (sent to the whole second) and given to the minute.
    assert empty == round((int(now) + 9 * 86400) / 60) * 60
    assert payload["dispensers"][1]["empty_at"] is None  # no recent use, no prediction


def test_low_offline_and_no_use_alerts(write_config, database_url):
    cfg = load_config(write_config(database=database_url, low_level_pct=50, offline_after_s=60,
                                   opening_hours="00:00-23:59", no_use_alert_min=30))
    app = create_app(cfg)
    client = app.test_client()
    client.post("/mettre_a_jour_donnees", json={"gel_used": 200, "hands_detected": 1}, headers=auth("entree"))
    store = app.extensions["usage_store"]
    now = time.time()
    payload = app.extensions["figures"].payload(now=now)
    kinds = {(a["dispenser"], a["kind"]) for a in payload["alerts"]}
    assert ("entree", "low") in kinds and ("entree", "offline") not in kinds
    assert ("cafeteria", "offline") in kinds  # never heard from
    assert ("entree", "no_use") not in kinds
    later = app.extensions["figures"].payload(now=now + 45 * 60)
    kinds = {(a["dispenser"], a["kind"]) for a in later["alerts"]}
    assert {("entree", "offline"), ("entree", "no_use"), ("entree", "low")} <= kinds
    assert later["alerts"][0]["kind"] == "offline"  # worst first
    store.engine.dispose()


def test_heartbeat_keeps_a_quiet_dispenser_online(client):
    assert entry(client, "b12")["online"] is False
    resp = client.post("/api/dispensers/b12/heartbeat", headers=auth("b12"),
                       json={"backlog": 4, "version": "1.0.0", "missed": 7})
    assert resp.status_code == 200
    b12 = entry(client, "b12")
    assert (b12["online"], b12["backlog"], b12["version"], b12["missed"]) == (True, 4, "1.0.0", 7)
    client.post("/api/dispensers/b12/heartbeat", headers=auth("b12"), json={"backlog": 0, "missed": 7})
    assert entry(client, "b12")["missed"] == 7  # an absolute counter: a retried heartbeat counts nothing twice
    assert entry(client, "b12")["hands_detected"] == 0


@pytest.mark.parametrize(("who", "body", "status"), [
    ("entree", {"backlog": 1}, 403), ("admin", {"backlog": 1}, 403), ("b12", {"backlog": -1}, 400),
    ("b12", {"backlog": True}, 400), ("b12", {"version": 3}, 400), ("b12", [1], 400),
])
def test_bad_heartbeats_are_refused(client, who, body, status):
    assert client.post("/api/dispensers/b12/heartbeat", headers=auth(who), json=body).status_code == status
    assert entry(client, "b12")["last_seen"] is None


def test_history_per_hour_and_day(client, post):
    post([{"gel_used": 2, "hands_detected": 1, "timestamp": "2026-03-10T08:15:00Z"},
          {"gel_used": 2, "hands_detected": 1, "timestamp": "2026-03-10T08:45:00Z"},
          {"gel_used": 1, "hands_detected": 1, "timestamp": "2026-03-11T09:00:00Z"}])
    post({"gel_used": 5, "hands_detected": 2, "timestamp": "2026-03-10T08:30:00Z"}, dispenser="b12")
    hours = client.get("/api/history?bucket=hour&from=2026-03-10T07:00:00Z&to=2026-03-10T10:00:00Z").get_json()
    assert [(p["start"], p["gel_used"], p["hands_detected"]) for p in hours["points"]] == [
        ("2026-03-10T07:00:00.000Z", 0, 0), ("2026-03-10T08:00:00.000Z", 9, 4), ("2026-03-10T09:00:00.000Z", 0, 0)]
    one = client.get("/api/history?bucket=hour&dispenser=b12&from=2026-03-10T08:00:00Z&to=2026-03-10T09:00:00Z")
    assert one.get_json()["points"][0]["hands_detected"] == 2
    days = client.get("/api/history?bucket=day&from=2026-03-09&to=2026-03-13").get_json()["points"]
    assert len(days) == 4 and sum(p["events"] for p in days) == 4 and days[0]["events"] == 0


@pytest.mark.parametrize(("query", "status"), [
    ("bucket=week", 400), ("from=nope", 400), ("from=2026-03-10&to=2026-03-01", 400),
    ("bucket=minute&from=2026-01-01&to=2026-03-01", 400), ("dispenser=zz", 404),
])
def test_bad_history_queries(client, query, status):
    resp = client.get(f"/api/history?{query}")
    assert resp.status_code == status and resp.get_json()["error"]


def test_csv_export_of_events_and_of_periods(client, post):
    post([{"gel_used": 1.5, "hands_detected": 1, "event_id": "a", "timestamp": "2026-03-10T08:15:00Z"},
          {"gel_used": 1.5, "hands_detected": 1, "event_id": "b", "timestamp": "2026-03-10T09:15:00Z"}])
    post({"gel_used": 2, "hands_detected": 1, "timestamp": "2026-03-10T09:20:00Z"}, dispenser="b12")
    resp = client.get("/api/export.csv?from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z")
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0] == ["timestamp", "dispenser", "event_id", "gel_used_ml", "hands_detected", "received_at", "entries"]
    assert [(r[0], r[1], r[2], r[3]) for r in rows[1:]] == [
        ("2026-03-10T08:15:00.000Z", "entree", "a", "1.5"), ("2026-03-10T09:15:00.000Z", "entree", "b", "1.5"),
        ("2026-03-10T09:20:00.000Z", "b12", "", "2.0")]
    only = client.get("/api/export.csv?from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z&dispenser=b12")
    assert len(only.get_data(as_text=True).strip().splitlines()) == 2
    hourly = client.get("/api/export.csv?bucket=hour&from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z")
    rows = list(csv.reader(io.StringIO(hourly.get_data(as_text=True))))
    assert rows[0] == ["period_start", "dispenser", "gel_used_ml", "hands_detected", "events", "entries"]
    assert rows[1:] == [["2026-03-10T08:00:00.000Z", "entree", "1.5", "1", "1", "0"],
                        ["2026-03-10T09:00:00.000Z", "b12", "2.0", "1", "1", "0"],
                        ["2026-03-10T09:00:00.000Z", "entree", "1.5", "1", "1", "0"]]


def test_metrics(client, post, sio_client):
    client.post("/api/dispensers/b12/heartbeat", headers=auth("b12"), json={"backlog": 0, "missed": 7})
    post({"gel_used": 1.5, "hands_detected": 1, "event_id": "m1"})
    post({"gel_used": 1.5, "hands_detected": 1, "event_id": "m1"})
    post({"gel_used": -1})
    client.post("/mettre_a_jour_donnees", json={"gel_used": 1})
    text = client.get("/metrics").get_data(as_text=True)
    for line in ['gel_events_ingested_total{dispenser="entree"} 1.0',
                 'gel_events_duplicate_total{dispenser="entree"} 1.0',
                 'gel_requests_rejected_total{reason="invalid"} 1.0',
                 'gel_requests_rejected_total{reason="unauthorized"} 1.0',
                 'gel_dispenser_gel_used_ml{dispenser="entree"} 1.5',
                 'gel_dispenser_level_pct{dispenser="entree"} 99.5',
                 'gel_dispenser_online{dispenser="cafeteria"} 0.0',
                 'gel_dispenser_hands_detected{dispenser="entree"} 1.0',
                 'gel_dispenser_hands_detected{dispenser="b12"} 0.0',
                 'gel_dispenser_missed_presences{dispenser="b12"} 7.0',
                 'gel_dispenser_missed_presences{dispenser="entree"} 0.0',
                 "gel_dashboards_connected 1.0",
                 'gel_request_duration_seconds_count{endpoint="api.mettre_a_jour_donnees"} 4.0']:
        assert line in text, line

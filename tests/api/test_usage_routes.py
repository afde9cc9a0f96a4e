"""The seed routes through Flask's test client: every rule of POST /mettre_a_jour_donnees and the GET."""

from __future__ import annotations

import json
import logging

import pytest

from app import create_app
from app.config import load_config
from app.web.api import CONFIRMATION
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS


def test_get_starts_at_zero_with_every_declared_dispenser(client):
    data = client.get("/obtenir_donnees_utilisation").get_json()
    assert (data["gel_used"], data["hands_detected"]) == (0, 0)
    assert data["updated_at"].endswith("Z")
    assert [d["id"] for d in data["dispensers"]] == ["entree", "cafeteria", "b12"]
    first = data["dispensers"][0]
    assert {"id", "name", "gel_used", "hands_detected", "capacity_ml", "level_pct", "last_seen"} <= set(first)
    assert first["level_pct"] == 100.0 and first["last_seen"] is None


def test_single_post_adds_increments_like_the_seed(post, totals):
    resp = post({"gel_used": 1.5, "hands_detected": 1})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["message"] == CONFIRMATION
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert (body["gel_used"], body["hands_detected"]) == (1.5, 1)
    post({"gel_used": 2})  # a missing key counts as 0, as in the seed
    post({"hands_detected": 3})
    assert totals() == (3.5, 4)


def test_batch_and_per_dispenser_figures(client, post):
    batch = [{"gel_used": 1.25, "hands_detected": 1, "event_id": f"e{i}"} for i in range(10)]
    assert post(batch).get_json()["accepted"] == 10
    post({"gel_used": 3, "hands_detected": 2}, dispenser="b12")
    data = client.get("/obtenir_donnees_utilisation").get_json()
    assert (data["gel_used"], data["hands_detected"]) == (15.5, 12)
    by_id = {d["id"]: d for d in data["dispensers"]}
    assert (by_id["entree"]["gel_used"], by_id["entree"]["hands_detected"]) == (12.5, 10)
    assert by_id["b12"]["level_pct"] == pytest.approx(99.4)
    assert by_id["cafeteria"]["last_seen"] is None and by_id["entree"]["last_seen"]
    one = client.get("/obtenir_donnees_utilisation?dispenser=b12").get_json()
    assert (one["gel_used"], one["hands_detected"]) == (3, 2)
    assert [d["id"] for d in one["dispensers"]] == ["b12"]


def test_unknown_dispenser_filter_is_404(client):
    resp = client.get("/obtenir_donnees_utilisation?dispenser=nope")
    assert resp.status_code == 404
    assert "nope" in resp.get_json()["error"]


def test_repeated_event_id_counts_once(post, totals):
    event = {"gel_used": 1.5, "hands_detected": 1, "event_id": "abc-1"}
    assert post(event).get_json()["accepted"] == 1
    again = post([event, {**event, "event_id": "abc-2"}]).get_json()
    assert (again["accepted"], again["duplicates"]) == (1, 1)
    assert totals() == (3.0, 2)
    # The same event_id from another dispenser is another event.
    assert post(event, dispenser="cafeteria").get_json()["accepted"] == 1


def test_same_event_id_twice_in_one_batch_counts_once(post, totals):
    event = {"gel_used": 1, "hands_detected": 1, "event_id": "twin"}
    body = post([event, event]).get_json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert totals() == (1, 1)


@pytest.mark.parametrize("headers", [{}, bearer("nope-nope-nope"),
                                     {"Authorization": f"Basic {TOKENS['entree']}"}])
def test_missing_or_unknown_token_is_401_and_stores_nothing(client, totals, headers):
    resp = client.post("/mettre_a_jour_donnees", json={"gel_used": 1, "hands_detected": 1}, headers=headers)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert "error" in resp.get_json()
    assert totals() == (0, 0)


BAD_BODIES = [
    ("{", "invalid JSON"),
    ('{"gel_used": NaN, "hands_detected": 1}', "NaN"),
    ('{"gel_used": Infinity}', "Infinity"),
    ('{"gel_used": 1e400}', "gel_used"),
    ('{"gel_used": true}', "gel_used"),
    ('{"gel_used": "1.5"}', "gel_used"),
    ('{"gel_used": null}', "gel_used"),
    ('{"gel_used": -1}', "gel_used"),
    ('{"gel_used": 1000000}', "gel_used"),
    ('{"hands_detected": 1.0}', "hands_detected"),
    ('{"hands_detected": 1.5}', "hands_detected"),
    ('{"hands_detected": false}', "hands_detected"),
    ('{"hands_detected": -2}', "hands_detected"),
    ('{"hands_detected": 99999999}', "hands_detected"),
    ("{}", "gel_used or hands_detected"),
    ('{"gel": 1}', "gel"),
    ('{"gel_used": 1, "event_id": ""}', "event_id"),
    ('{"gel_used": 1, "event_id": 5}', "event_id"),
    ('{"gel_used": 1, "event_id": "' + "x" * 65 + '"}', "event_id"),
    ('{"gel_used": 1, "timestamp": "yesterday"}', "timestamp"),
    ('{"gel_used": 1, "timestamp": 1700000000}', "timestamp"),
    ('{"gel_used": 1, "timestamp": "1999-12-31T23:00:00Z"}', "timestamp"),
    ('{"gel_used": 1, "timestamp": "2999-01-01T00:00:00Z"}', "timestamp"),
    ("[]", "1 to 1000"),
    ("[1]", "object"),
    ('"hello"', "object"),
    ("42", "object"),
    (json.dumps([{"gel_used": 1}] * 1001), "1 to 1000"),
    (json.dumps([{"gel_used": 1}, {"gel_used": -1}]), "event 1: gel_used"),
    (b'{"gel_used": "\xff"}', "invalid JSON"),
]


@pytest.mark.parametrize(("body", "named"), BAD_BODIES)
def test_bad_input_is_400_naming_the_field_and_changes_nothing(client, totals, body, named):
    client.post("/mettre_a_jour_donnees", json={"gel_used": 1, "hands_detected": 1, "event_id": "before"},
                headers=bearer(TOKENS['entree']))
    resp = client.post("/mettre_a_jour_donnees", data=body, content_type="application/json",
                       headers=bearer(TOKENS['entree']))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert named in resp.get_json()["error"]
    assert totals() == (1, 1)


def test_batch_is_all_or_nothing(post, totals):
    good = [{"gel_used": 1, "hands_detected": 1, "event_id": f"ok{i}"} for i in range(5)]
    assert post([*good, {"gel_used": "bad"}]).status_code == 400
    assert totals() == (0, 0)
    assert post(good).get_json()["accepted"] == 5  # none of them was half-stored


def test_non_json_content_type_is_415(client, totals):
    resp = client.post("/mettre_a_jour_donnees", data="gel_used=1", content_type="application/x-www-form-urlencoded",
                       headers=bearer(TOKENS['entree']))
    assert resp.status_code == 415
    assert "Content-Type" in resp.get_json()["error"]
    assert totals() == (0, 0)


def test_body_over_one_mib_is_413(client, totals):
    big = json.dumps([{"gel_used": 1, "hands_detected": 1, "event_id": "x" * 64}] * 20000)
    assert len(big) > 1024 * 1024
    resp = client.post("/mettre_a_jour_donnees", data=big, content_type="application/json",
                       headers=bearer(TOKENS['entree']))
    assert resp.status_code == 413
    assert "1 MiB" in resp.get_json()["error"]
    assert totals() == (0, 0)


def test_timestamps_with_and_without_offset(client, post):
    post([{"gel_used": 1, "timestamp": "2026-01-05T10:00:00"},
          {"gel_used": 1, "timestamp": "2026-01-05T11:30:00+01:00"}])
    hist = client.get("/api/history?bucket=hour&from=2026-01-05T09:00:00Z&to=2026-01-05T12:00:00Z").get_json()
    assert [p["gel_used"] for p in hist["points"]] == [0, 2, 0]  # both are 10:xx UTC


def test_etag_and_304(client, post):
    first = client.get("/obtenir_donnees_utilisation")
    etag = first.headers["ETag"]
    again = client.get("/obtenir_donnees_utilisation", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    post({"gel_used": 1})
    changed = client.get("/obtenir_donnees_utilisation", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_cross_origin_reads_are_allowed(client):
    resp = client.get("/obtenir_donnees_utilisation", headers={"Origin": "http://192.0.2.10"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in resp.headers["Access-Control-Expose-Headers"]
    pre = client.options("/obtenir_donnees_utilisation", headers={
        "Origin": "http://192.0.2.10", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert pre.status_code == 200
    assert "If-None-Match" in pre.headers["Access-Control-Allow-Headers"]
    post = client.post("/mettre_a_jour_donnees", json={}, headers={"Origin": "http://192.0.2.10"})
    assert "Access-Control-Allow-Origin" not in post.headers


def test_healthz(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    app.extensions["usage_store"].engine.dispose()
    app.extensions["usage_store"].engine = __import__("sqlalchemy").create_engine("sqlite:////nonexistent/dir/x.db")
    resp = client.get("/healthz")
    assert resp.status_code == 503 and resp.get_json()["status"] == "unavailable"


def test_errors_are_json(client):
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.get_json()["error"]
    resp = client.put("/mettre_a_jour_donnees")
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]


def test_a_new_app_on_the_same_database_sees_the_same_totals(config_path, post, totals):
    post([{"gel_used": 2.5, "hands_detected": 1, "event_id": "p1"}, {"gel_used": 1, "hands_detected": 1}])
    other = create_app(load_config(config_path)).test_client()
    data = other.get("/obtenir_donnees_utilisation").get_json()
    assert (data["gel_used"], data["hands_detected"]) == totals() == (3.5, 2)
    # ...and the dedupe memory is in the database too, not in the process.
    resp = other.post("/mettre_a_jour_donnees", json={"gel_used": 2.5, "hands_detected": 1, "event_id": "p1"},
                      headers=bearer(TOKENS['entree']))
    assert resp.get_json()["duplicates"] == 1


def test_gel_totals_are_exact(post, totals):
    post([{"gel_used": 0.1, "hands_detected": 1}] * 1000)
    assert totals() == (100.0, 1000)


def test_one_log_line_per_post_and_at_debug_one_per_event(post, caplog):
    with caplog.at_level(logging.INFO, logger="app.web.api"):
        post([{"gel_used": 1.5, "hands_detected": 1, "event_id": "a"}, {"gel_used": 1.5, "hands_detected": 1}])
    lines = [r.getMessage() for r in caplog.records if r.name == "app.web.api"]
    assert lines == ["ingest dispenser=entree accepted=2 duplicates=0 gel_ml=3.000 hands=2"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="app.web.api"):
        post([{"gel_used": 1.5, "hands_detected": 1, "event_id": "b"}, {"gel_used": 2, "hands_detected": 1}])
    events = [r.getMessage() for r in caplog.records if r.name == "app.web.api" and r.getMessage().startswith("event ")]
    assert len(events) == 2 and "event_id=b" in events[0] and "gel_ml=2.000" in events[1]
    assert all(TOKENS["entree"] not in r.getMessage() for r in caplog.records)

"""Commissioning: a dispenser in test mode records its events, marked, and no figure counts them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

import pytest
import requests
from flask.testing import FlaskClient

from app import socketio
from devkit.servers import ServerProcess, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_app, ward_config_text

MAINTENANCE = "token-maintenance-0000"
ROUTE = "/obtenir_donnees_utilisation"
DAY = "2026-03-28"


@pytest.fixture
def client(tmp_path, database_url) -> Iterator[FlaskClient]:
    with ward_app(tmp_path, database=database_url, timezone="Europe/Paris", maintenance_token=MAINTENANCE) as app:
        yield app.test_client()


def set_mode(client: FlaskClient, mode: object, token: str | None = ADMIN, dispenser: str = "entree"):
    headers = bearer(token) if token else {}
    return client.post(f"/api/dispensers/{dispenser}/mode", json={"mode": mode}, headers=headers)


def post(client: FlaskClient, body: object, dispenser: str = "entree") -> dict:
    resp = client.post("/mettre_a_jour_donnees", json=body, headers=bearer(TOKENS[dispenser]))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def entry(client: FlaskClient, dispenser: str = "entree") -> dict:
    return client.get(f"{ROUTE}?dispenser={dispenser}").get_json()["dispensers"][0]


def rows(resp) -> list[list[str]]:
    return list(csv.reader(io.StringIO(resp.get_data(as_text=True))))


def presses(n: int, prefix: str = "t") -> list[dict]:
    """Installers' presses on 28 March, 290 ml in all (a 300 ml reservoir would read nearly empty)."""
    return [{"gel_used": 290 / n, "hands_detected": 1, "entries": 1, "event_id": f"{prefix}{i}",
             "timestamp": f"{DAY}T09:{i:02d}:00Z"} for i in range(n)]


def test_test_mode_events_are_recorded_but_in_no_figure(client):
    answer = set_mode(client, "test")
    assert answer.status_code == 200 and answer.get_json()["dispenser"]["mode"] == "test"
    done = post(client, presses(5))
    assert done["accepted"] == 5 and (done["gel_used"], done["hands_detected"], done["entries"]) == (0, 0, 0)
    data = client.get(ROUTE).get_json()
    assert (data["gel_used"], data["hands_detected"], data["entries"]) == (0, 0, 0)  # totals
    mine = entry(client)
    assert (mine["mode"], mine["test_events"], mine["events"], mine["hands_detected"]) == ("test", 5, 0, 0)
    assert (mine["level_pct"], mine["low"], mine["empty_at"], mine["last_event_at"]) == (100.0, False, None, None)
    assert mine["last_seen"] is not None  # a contact all the same
    assert not [a for a in data["alerts"] if a["dispenser"] == "entree"]  # no "low" from the installers' presses
    assert next(g for g in data["groups"] if g["id"] == "ward-a")["hands_detected"] == 0
    history = client.get(f"/api/history?bucket=day&from={DAY}&to=2026-03-29&dispenser=entree").get_json()
    assert [(p["hands_detected"], p["events"]) for p in history["points"]] == [(0, 0)]
    week = client.get(f"/api/compliance?group=ward-a&from={DAY}&to={DAY}").get_json()["rows"][0]
    assert (week["hands"], week["gel_ml"], week["entries"]) == (0, 0, 0)


def test_exports_leave_test_events_out_unless_asked(client):
    set_mode(client, "test")
    post(client, presses(2))
    set_mode(client, "live", token=MAINTENANCE)
    post(client, {"gel_used": 1.5, "hands_detected": 1, "event_id": "live-1", "timestamp": f"{DAY}T10:00:00Z"})
    span = f"from={DAY}&to=2026-03-29"
    events = rows(client.get(f"/api/export.csv?{span}"))
    assert [r[2] for r in events[1:]] == ["live-1"] and "test" not in events[0]
    marked = rows(client.get(f"/api/export.csv?{span}&include_test=1"))
    assert marked[0][-1] == "test"
    assert [(r[2], r[-1]) for r in marked[1:]] == [("t0", "1"), ("t1", "1"), ("live-1", "0")]
    days = rows(client.get(f"/api/export.csv?bucket=day&{span}"))
    assert [(r[0], r[1], r[3]) for r in days[1:]] == [(DAY, "entree", "1")]
    both = rows(client.get(f"/api/export.csv?bucket=day&{span}&include_test=1"))
    assert [(r[0], r[3], r[5], r[-1]) for r in both[1:]] == [(DAY, "1", "0", "0"), (DAY, "2", "2", "1")]


def test_back_to_live_counts_again_and_a_test_event_id_stays_a_test(client):
    set_mode(client, "test")
    post(client, presses(1))
    set_mode(client, "live")
    again = post(client, presses(1) + [{"gel_used": 1.5, "hands_detected": 1, "event_id": "after"}])
    assert (again["accepted"], again["duplicates"]) == (1, 1)  # the press is kept as a test, never counted later
    mine = entry(client)
    assert (mine["mode"], mine["hands_detected"], mine["gel_used"], mine["test_events"]) == ("live", 1, 1.5, 1)


@pytest.mark.parametrize(("token", "mode", "status"), [
    (None, "test", 401), ("not-a-token-at-all", "test", 401), (TOKENS["entree"], "test", 403),
    (ADMIN, "demo", 400), (ADMIN, None, 400), (ADMIN, ["test"], 400),
])
def test_who_may_change_the_mode_and_to_what(client, token, mode, status):
    resp = set_mode(client, mode, token)
    assert resp.status_code == status and resp.get_json()["error"]
    assert entry(client)["mode"] == "live"


def test_mode_of_an_unknown_dispenser_is_404_and_the_body_must_be_json(client):
    assert set_mode(client, "test", dispenser="nope").status_code == 404
    resp = client.post("/api/dispensers/entree/mode", data="mode=test", headers=bearer(ADMIN),
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415


def test_a_mode_change_reaches_the_dashboards(tmp_path):
    with ward_app(tmp_path) as app:
        client = app.test_client()
        sio = socketio.test_client(app, flask_test_client=client)
        sio.emit("join", {"group": None}, callback=True)  # the deltas are for clients that joined
        sio.get_received()
        set_mode(client, "test")
        deltas = [m["args"][0] for m in sio.get_received() if m["name"] == "donnees_delta"]
        assert any(d["mode"] == "test" for delta in deltas for d in delta["dispensers"] if d["id"] == "entree")
        sio.disconnect()


@pytest.mark.slow
def test_a_real_server_keeps_test_presses_apart(tmp_path):
    """Through a real server process (eventlet): the mode, a test press, the payload and the day export."""
    config = tmp_path / "config.toml"
    config.write_text(ward_config_text(async_mode="eventlet", timezone="Europe/Paris"), encoding="utf-8")
    server = ServerProcess(config).start()
    try:
        admin, entree = bearer(ADMIN), bearer(TOKENS["entree"])
        url = server.url
        assert requests.post(f"{url}/api/dispensers/entree/mode", json={"mode": "test"}, headers=admin,
                             timeout=10).status_code == 200
        assert requests.post(f"{url}/mettre_a_jour_donnees", json={"gel_used": 2, "hands_detected": 1},
                             headers=entree, timeout=10).status_code == 200
        requests.post(f"{url}/api/dispensers/entree/mode", json={"mode": "live"}, headers=admin, timeout=10)
        requests.post(f"{url}/mettre_a_jour_donnees", json={"entries": 3}, headers=entree, timeout=10)
        data = wait_for(lambda: (d := requests.get(f"{url}{ROUTE}", timeout=10).json())["entries"] == 3 and d)
        mine = next(d for d in data["dispensers"] if d["id"] == "entree")
        assert (data["gel_used"], mine["test_events"], mine["mode"], mine["entries"]) == (0, 1, "live", 3)
        export = requests.get(f"{url}/api/export.csv", params={"bucket": "day", "include_test": "1"}, timeout=10)
        lines = list(csv.DictReader(io.StringIO(export.text)))
        assert {(r["test"], r["gel_used_ml"], r["entries"]) for r in lines} == {("1", "2.0", "0"), ("0", "0.0", "3")}
        assert all(date.fromisoformat(r["date"]) and r["period_start"].endswith("Z") for r in lines)
    finally:
        server.stop()

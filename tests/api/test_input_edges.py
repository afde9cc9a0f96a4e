"""Input at the edges answers a clear 4xx and changes nothing: dates, batch sizes, refills, heartbeats, ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from app.config import ConfigError, load_config
from app.web.history import ExportCut
from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS, config_text
from tests.helpers.wards import ward_app


@pytest.fixture
def client(tmp_path) -> Iterator[FlaskClient]:
    with ward_app(tmp_path) as app:
        yield app.test_client()


def batch(n: int, first: int = 0) -> list[dict]:
    return [{"gel_used": 1.0, "hands_detected": 1, "event_id": f"edge-{first + i:06d}"} for i in range(n)]


@pytest.mark.parametrize("query", [
    "bucket=minute&from=0001-01-01&to=0001-01-02", "to=0001-01-01", "bucket=day&from=9999-01-01&to=9999-12-31",
    "bucket=hour&from=1999-12-31T23:00:00%2B00:00&to=2000-01-01T01:00:00%2B00:00", "from=2101-01-01",
])
@pytest.mark.parametrize("route", ["/api/history", "/api/export.csv"])
def test_dates_outside_2000_to_2100_are_400(client, route, query):
    resp = client.get(f"{route}?{query}", headers=bearer(ADMIN))
    assert resp.status_code == 400, resp.get_data(as_text=True)[:200]
    assert "between the years 2000 and 2100" in resp.get_json()["error"]


def test_dates_inside_the_range_still_answer(client):
    resp = client.get("/api/history?bucket=day&from=2000-01-01&to=2000-02-01", headers=bearer(ADMIN))
    assert resp.status_code == 200


def test_a_batch_over_the_rate_burst_is_429_saying_the_most_a_batch_may_hold(tmp_path):
    with ward_app(tmp_path, dispenser_events_per_min=600) as app:
        client = app.test_client()
        resp = client.post("/mettre_a_jour_donnees", json=batch(1000), headers=bearer(TOKENS["entree"]))
        assert resp.status_code == 429 and resp.headers["Retry-After"]
        assert resp.get_json()["max_batch"] == 600 and "at most 600" in resp.get_json()["error"]
        assert client.get("/obtenir_donnees_utilisation").get_json()["hands_detected"] == 0
        ok = client.post("/mettre_a_jour_donnees", json=batch(600), headers=bearer(TOKENS["entree"]))
        assert ok.status_code == 200 and ok.get_json()["accepted"] == 600


def test_a_second_refill_within_a_minute_is_429_and_records_nothing(client):
    url = "/api/dispensers/b12/refill"
    assert client.post(url, headers=bearer(TOKENS["b12"])).status_code == 200
    again = client.post(url, headers=bearer(ADMIN))  # whoever asks: it is the reservoir that was just filled
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert len(client.get("/api/dispensers/b12/refills").get_json()["refills"]) == 1
    assert client.post("/api/dispensers/entree/refill", headers=bearer(ADMIN)).status_code == 200  # per dispenser


@pytest.mark.parametrize("body", [{"backlog": 2**63}, {"backlog": 2**63 - 1}, {"missed": 2**63 - 1},
                                  {"missed": 10**9 + 1}])
def test_heartbeat_numbers_are_bounded(client, body):
    resp = client.post("/api/dispensers/entree/heartbeat", json=body, headers=bearer(TOKENS["entree"]))
    assert resp.status_code == 400 and "from 0 to" in resp.get_json()["error"]
    entree = client.get("/obtenir_donnees_utilisation?dispenser=entree").get_json()["dispensers"][0]
    assert entree["online"] is False  # nothing recorded, not even the contact


@pytest.mark.parametrize("since", ["٣", "３", "²"])
def test_since_takes_ascii_digits_only(client, since):
    assert client.get(f"/obtenir_donnees_utilisation?since={since}").status_code == 400


def test_a_dispenser_and_a_group_together_are_400(client):
    resp = client.get("/obtenir_donnees_utilisation?dispenser=b12&group=ward-a")
    assert resp.status_code == 400 and "not both" in resp.get_json()["error"]


def test_the_census_put_refuses_unknown_keys(client):
    resp = client.put("/api/groups/ward-a/census/2026-03-28", json={"patients": 3, "patient": 4},
                      headers=bearer(ADMIN))
    assert resp.status_code == 400 and "patient" in resp.get_json()["error"]
    days = client.get("/api/groups/ward-a/census?from=2026-03-01&to=2026-03-31").get_json()["days"]
    assert days == []


@pytest.mark.parametrize("ident", ["a/b", "a b", "é", "a?b", "a#b", "..", "x" * 65])
def test_dispenser_ids_urls_cannot_carry_are_refused_at_start(tmp_path, ident):
    path = tmp_path / "config.toml"
    path.write_text(config_text().replace('id = "b12"', f'id = "{ident}"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="A-Z a-z 0-9"):
        load_config(path)


def test_group_ids_urls_cannot_carry_are_refused_at_start(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(config_text() + '\n[[server.groups]]\nid = "bat a/2"\nname = "Bâtiment A"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="A-Z a-z 0-9"):
        load_config(path)


def test_exports_that_outlive_their_deadline_give_their_slot_up(tmp_path):
    # Two clients that hold an export open (reading nothing, as a slow reader between its few bytes) keep both
    # slots only until export_deadline_s: then another export is served, and the slow ones end with an error.
    with ward_app(tmp_path, max_exports=2, export_deadline_s=0.3) as app:
        client = app.test_client()
        client.post("/mettre_a_jour_donnees", json=batch(600), headers=bearer(TOKENS["entree"]))
        slow = [client.get("/api/export.csv", buffered=False) for _ in range(2)]
        assert all(r.status_code == 200 for r in slow)
        assert client.get("/api/export.csv").status_code == 503  # within the deadline: both slots are theirs
        wait_for(lambda: client.get("/api/export.csv").status_code == 200, 10, message="a slot given up")
        with pytest.raises(ExportCut):
            b"".join(slow[0].response)
        for resp in slow:
            resp.close()


def test_an_export_within_its_deadline_is_whole(client):
    for first in (0, 600):  # more rows than one chunk
        resp = client.post("/mettre_a_jour_donnees", json=batch(600, first), headers=bearer(TOKENS["entree"]))
        assert resp.status_code == 200
    rows = client.get("/api/export.csv").get_data(as_text=True).splitlines()
    assert len(rows) == 1201

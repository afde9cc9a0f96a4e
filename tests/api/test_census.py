"""The census of a ward: one day through the API, a CSV import (all or nothing), the read, and who may write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_app

MAINTENANCE = "token-maintenance-0000"
STAFF = bearer(ADMIN)


@pytest.fixture
def client(tmp_path) -> Iterator[FlaskClient]:
    with ward_app(tmp_path, maintenance_token=MAINTENANCE) as app:
        yield app.test_client()


def put(client: FlaskClient, body: object, day: str = "2026-03-28", group: str = "ward-a",
        headers: dict | None = None):
    return client.put(f"/api/groups/{group}/census/{day}", json=body, headers=STAFF if headers is None else headers)


def census(client: FlaskClient, group: str = "ward-a", query: str = "from=2026-03-01&to=2026-03-31") -> dict:
    return {d["date"]: d["patients"] for d in client.get(f"/api/groups/{group}/census?{query}").get_json()["days"]}


def test_a_day_is_set_then_replaced_and_read_back(client):
    resp = put(client, {"patients": 24})
    assert resp.status_code == 200
    assert resp.get_json() == {"group": "ward-a", "date": "2026-03-28", "patients": 24}
    assert put(client, {"patients": 22}, headers=bearer(MAINTENANCE)).status_code == 200
    assert put(client, {"patients": 0}, day="2026-03-29").status_code == 200  # a closed ward has no patient
    assert census(client) == {"2026-03-28": 22, "2026-03-29": 0}
    assert census(client, query="from=2026-03-29&to=2026-03-29") == {"2026-03-29": 0}
    assert census(client, "ward-b") == {}  # per group


@pytest.mark.parametrize("day", ["2026-02-30", "2026-3-28", "28-03-2026", "20260328", "2026-03-28T00:00", "1999-12-31",
                                 "yesterday"])
def test_a_bad_date_is_400(client, day):
    resp = put(client, {"patients": 3}, day=day)
    assert resp.status_code == 400 and "date" in resp.get_json()["error"]


@pytest.mark.parametrize("body", [{"patients": -1}, {"patients": 2.5}, {"patients": "12"}, {"patients": True},
                                  {"patients": None}, {"patients": 100_001}, {}, [12], {"beds": 12}])
def test_a_bad_count_is_400_and_changes_nothing(client, body):
    put(client, {"patients": 5})
    resp = put(client, body)
    assert resp.status_code == 400 and "patients" in resp.get_json()["error"]
    assert census(client) == {"2026-03-28": 5}


def test_an_unknown_group_is_404(client):
    assert put(client, {"patients": 3}, group="nowhere").status_code == 404
    assert client.get("/api/groups/nowhere/census").status_code == 404
    resp = client.post("/api/groups/nowhere/census.csv", data="date,patients\n", headers=STAFF,
                       content_type="text/csv")
    assert resp.status_code == 404


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), (bearer("not-a-token-at-all"), 401), (bearer(TOKENS["entree"]), 403),
    ({"Authorization": "Basic x"}, 401),
])
def test_only_the_admin_and_maintenance_tokens_may_write(client, headers, status):
    assert put(client, {"patients": 3}, headers=headers).status_code == status
    resp = client.post("/api/groups/ward-a/census.csv", data="date,patients\n2026-03-28,3\n", headers=headers,
                       content_type="text/csv")
    assert resp.status_code == status
    assert census(client) == {}


def test_a_csv_file_sets_every_day(client):
    text = "\ufeffdate,patients\r\n2026-03-02,20\r\n\r\n2026-03-01,18\r\n2026-03-03, 21 \r\n"  # BOM, CRLF, blank line
    resp = client.post("/api/groups/ward-a/census.csv", data=text.encode(), headers=STAFF,
                       content_type="text/csv; charset=utf-8")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"group": "ward-a", "imported": 3, "from": "2026-03-01", "to": "2026-03-03"}
    assert census(client) == {"2026-03-01": 18, "2026-03-02": 20, "2026-03-03": 21}


@pytest.mark.parametrize(("text", "error"), [
    ("day,count\n2026-03-01,3\n", "line 1: the header must be date,patients"),
    ("date,patients\n2026-03-01,3\n2026-03-32,4\n", "line 3: date must be a date"),
    ("date,patients\n2026-03-01,3\n2026-03-02,-4\n", "line 3: patients must be an integer"),
    ("date,patients\n2026-03-01,3.5\n", "line 2: patients must be an integer"),
    ("date,patients\n2026-03-01,100001\n", "line 2: patients must be an integer from 0 to 100000"),
    ("date,patients\n2026-03-01\n", "line 2: 1 columns, expected 2"),
    ("date,patients\n2026-03-01,3\n2026-03-01,4\n", "line 3: date 2026-03-01 is given twice"),
    ("date,patients\n", "no line after its header"),
])
def test_a_bad_csv_line_is_named_and_nothing_is_imported(client, text, error):
    put(client, {"patients": 9}, day="2026-03-01")
    resp = client.post("/api/groups/ward-a/census.csv", data=text, headers=STAFF, content_type="text/csv")
    assert resp.status_code == 400 and error in resp.get_json()["error"], resp.get_json()
    assert census(client) == {"2026-03-01": 9}


def test_the_csv_import_wants_csv(client):
    resp = client.post("/api/groups/ward-a/census.csv", json={"date": "2026-03-01"}, headers=STAFF)
    assert resp.status_code == 415
    resp = client.post("/api/groups/ward-a/census.csv", data=b"date,patients\n2026-03-01,\xff\n", headers=STAFF,
                       content_type="text/csv")
    assert resp.status_code == 400 and "UTF-8" in resp.get_json()["error"]


@pytest.mark.parametrize("query", ["from=2026-03-10&to=2026-03-01", "from=nope", "to=2026-13-01",
                                   "from=2000-01-01&to=2026-01-01"])
def test_bad_census_reads_are_400(client, query):
    resp = client.get(f"/api/groups/ward-a/census?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]


@pytest.mark.parametrize(("key", "value", "error"), [
    ("opportunities_per_patient_day", "0", "opportunities_per_patient_day must be a number > 0"),
    ("opportunities_per_patient_day", "-3", "opportunities_per_patient_day must be a number > 0"),
    ("opportunities_per_patient_day", '"30"', "opportunities_per_patient_day must be a number > 0"),
    ("target_pct", "101", "target_pct must be a number from 0 to 100"),
    ("target_pct", "true", "target_pct must be a number from 0 to 100"),
    ("ward_type", "3", "ward_type must be a string"),
])
def test_bad_ward_settings_are_refused_at_start(tmp_path, key, value, error):
    from app.config import ConfigError, load_config
    from tests.helpers.wards import ward_config_text

    text = ward_config_text()
    first = text.index(f"{key} = ")  # ward A's
    path = tmp_path / "config.toml"
    path.write_text(text[:first] + f"{key} = {value}" + text[text.index("\n", first):], encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[\[server.groups\]\] #2 \(ward-a\): " + error):
        load_config(path)

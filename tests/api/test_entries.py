"""The door counter on the wire: `entries` beside or instead of a dose, totalled per dispenser, group and fleet."""

from __future__ import annotations

import pytest

from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS
from tests.helpers.wards import ward_app

ROUTE = "/obtenir_donnees_utilisation"


def post(client, body, dispenser: str = "entree"):
    return client.post("/mettre_a_jour_donnees", json=body, headers=bearer(TOKENS[dispenser]))


def entry(client, dispenser: str) -> dict:
    return client.get(f"{ROUTE}?dispenser={dispenser}").get_json()["dispensers"][0]


def test_entries_beside_and_instead_of_a_dose_are_totalled(client):
    assert post(client, {"gel_used": 1.5, "hands_detected": 1}).status_code == 200
    answer = post(client, [{"entries": 3}, {"gel_used": 1.5, "hands_detected": 1, "entries": 2}]).get_json()
    assert (answer["accepted"], answer["entries"], answer["hands_detected"]) == (2, 5, 2)
    assert post(client, {"entries": 4}, dispenser="b12").status_code == 200
    data = client.get(ROUTE).get_json()
    assert (data["entries"], data["hands_detected"], data["gel_used"]) == (9, 2, 3.0)
    by_id = {d["id"]: d for d in data["dispensers"]}
    assert (by_id["entree"]["entries"], by_id["b12"]["entries"], by_id["cafeteria"]["entries"]) == (5, 4, 0)
    assert (by_id["b12"]["gel_used"], by_id["b12"]["hands_detected"], by_id["b12"]["events"]) == (0, 0, 1)
    assert by_id["entree"]["mode"] == "live" and by_id["entree"]["test_events"] == 0
    # The POST without entries works as before, and its answer keeps every key it had.
    old = post(client, {"gel_used": 1}).get_json()
    assert {"message", "accepted", "duplicates", "gel_used", "hands_detected"} <= set(old)


def test_a_passage_is_not_a_use(client):
    """An entries-only event moves no dose time: a door that opens does not silence the no-use alert."""
    post(client, {"gel_used": 1, "hands_detected": 1, "timestamp": "2026-03-10T08:00:00Z"})
    post(client, {"entries": 1, "timestamp": "2026-03-10T09:00:00Z"})
    assert entry(client, "entree")["last_event_at"] == "2026-03-10T08:00:00.000Z"


def test_a_repeated_event_id_counts_its_entries_once(client):
    for _ in range(2):
        post(client, {"entries": 7, "event_id": "door-1"})
    assert entry(client, "entree")["entries"] == 7


@pytest.mark.parametrize("value", [-1, 1.5, 1001, "3", True, None])
def test_bad_entries_are_refused_and_change_nothing(client, value):
    resp = post(client, [{"gel_used": 1}, {"entries": value}])
    assert resp.status_code == 400 and "entries" in resp.get_json()["error"]
    assert client.get(ROUTE).get_json()["gel_used"] == 0


def test_an_object_needs_one_of_the_three_keys(client):
    resp = post(client, {"event_id": "nothing"})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "gel_used or hands_detected or entries is required"


def test_entries_by_group(tmp_path):
    with ward_app(tmp_path) as app:
        client = app.test_client()
        post(client, {"entries": 2})
        post(client, {"entries": 5}, dispenser="b12")
        assert client.get(f"{ROUTE}?group=ward-a").get_json()["entries"] == 2
        groups = {g["id"]: g["entries"] for g in client.get(ROUTE).get_json()["groups"]}
        assert groups == {"site": 7, "ward-a": 2, "ward-b": 5}

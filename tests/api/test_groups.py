"""Groups in the payload, `?group=`, `?since=` and gzip on the GET route, and the maintenance token."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator

import pytest

from app import create_app
from app.config import load_config
from app.live.watchdog import AlertMemory, check_alerts
from app.store import Event, Store
from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tools.fleet_layout import write_fleet

ROUTE = "/obtenir_donnees_utilisation"
SEED_KEYS = {"gel_used", "hands_detected", "updated_at", "dispensers", "alerts"}
MAINTENANCE = "maintenance-token-0000"
CARDIO = ["CHU Nord", "Bâtiment A", "Étage 1", "Cardiologie"]


@pytest.fixture
def fleet(tmp_path) -> Iterator[tuple]:
    """An app serving 25 dispensers in 3 wards (site -> 2 buildings -> floors -> wards), its client, tokens."""
    config, tokens = write_fleet(tmp_path, 25, {"database": "sqlite:///usage.db", "async_mode": "threading",
                                                "admin_token": ADMIN, "maintenance_token": MAINTENANCE,
                                                "max_event_age_days": 100_000})  # a January dose time
    app = create_app(load_config(config))
    client = app.test_client()

    def use(dispenser: str, gel: float = 1.5) -> None:
        resp = client.post("/mettre_a_jour_donnees", json={"gel_used": gel, "hands_detected": 1},
                           headers=bearer(tokens[dispenser]))
        assert resp.status_code == 200

    yield client, use, tokens
    app.extensions["usage_store"].engine.dispose()


@pytest.fixture
def other_process(fleet) -> Iterator[Store]:
    """A second store on the same database, as another server process would hold."""
    client = fleet[0]
    mine = client.application.extensions["usage_store"]
    other = Store(mine.engine.url.render_as_string(hide_password=False), mine.decls)
    yield other
    other.engine.dispose()


def by_id(items: list[dict]) -> dict[str, dict]:
    return {item["id"]: item for item in items}


def test_payload_carries_groups_paths_and_seq(fleet):
    client, use, _ = fleet
    use("d0001")
    use("d0012", 3.0)
    data = client.get(ROUTE).get_json()
    assert SEED_KEYS | {"seq", "groups", "entries"} == set(data)  # every key REST clients read today, plus three
    assert isinstance(data["seq"], int) and data["seq"] > 0
    groups = by_id(data["groups"])
    assert list(groups)[:3] == ["site", "bat-a", "bat-b"]  # declaration order
    assert groups["site"] == {"id": "site", "name": "CHU Nord", "parent": None, "gel_used": 4.5,
                              "hands_detected": 2, "entries": 0, "dispensers": 25, "alerts": 23}
    assert (groups["bat-a"]["gel_used"], groups["bat-b"]["gel_used"]) == (1.5, 3.0)
    assert (groups["ward-001"]["parent"], groups["ward-001"]["dispensers"]) == ("bat-a-e1", 10)
    entries = by_id(data["dispensers"])
    assert (entries["d0001"]["group"], entries["d0001"]["path"]) == ("ward-001", CARDIO)
    assert entries["d0012"]["path"] == ["CHU Nord", "Bâtiment B", "Étage 1", "Pneumologie"]
    assert (data["gel_used"], data["hands_detected"], len(data["alerts"])) == (4.5, 2, 23)  # 23 never heard from


def test_group_view_holds_its_subtree_only(fleet):
    client, use, _ = fleet
    use("d0001")
    use("d0012", 3.0)
    building = client.get(ROUTE + "?group=bat-b").get_json()
    assert [d["id"] for d in building["dispensers"]] == [f"d{i:04d}" for i in range(11, 21)]
    assert [g["id"] for g in building["groups"]] == ["bat-b", "bat-b-e1", "ward-002"]
    assert (building["gel_used"], building["hands_detected"]) == (3.0, 1)
    ward = client.get(ROUTE + "?group=ward-003").get_json()
    assert [d["id"] for d in ward["dispensers"]] == [f"d{i:04d}" for i in range(21, 26)]
    assert (ward["gel_used"], ward["groups"][0]["dispensers"]) == (0, 5)
    # Silent dispensers are offline: the group's alerts are its own dispensers' alerts only.
    assert {a["dispenser"] for a in ward["alerts"]} == {f"d{i:04d}" for i in range(21, 26)}
    assert ward["groups"][0]["alerts"] == len(ward["alerts"]) == 5
    missing = client.get(ROUTE + "?group=nowhere")
    assert missing.status_code == 404 and "nowhere" in missing.get_json()["error"]


def test_since_answers_what_changed_or_304(fleet):
    client, use, _ = fleet
    seq = client.get(ROUTE).get_json()["seq"]
    assert client.get(f"{ROUTE}?since={seq}").status_code == 304
    use("d0003")
    resp = client.get(f"{ROUTE}?since={seq}")
    delta = resp.get_json()
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-cache"
    assert set(delta) == {"base", "seq", "gel_used", "hands_detected", "entries", "updated_at", "dispensers",
                          "removed", "alerts_added", "alerts_removed", "groups"}
    assert (delta["base"], delta["removed"], delta["gel_used"], delta["hands_detected"]) == (seq, [], 1.5, 1)
    assert delta["seq"] > seq and [d["id"] for d in delta["dispensers"]] == ["d0003"]
    assert delta["dispensers"][0] == by_id(client.get(ROUTE).get_json()["dispensers"])["d0003"]  # full entry
    assert [g["id"] for g in delta["groups"]] == ["site", "bat-a", "bat-a-e1", "ward-001"]
    assert delta["groups"][-1]["gel_used"] == 1.5
    # Every dispenser alerts (offline) but d0003: the delta carries d0003's resolved alert, not the 24 others.
    assert delta["alerts_added"] == [] and {"dispenser": "d0003", "kind": "offline"} in delta["alerts_removed"]
    assert client.get(f"{ROUTE}?since={delta['seq']}").status_code == 304
    # A group that did not change answers 304; one that did gets its own totals.
    assert client.get(f"{ROUTE}?since={seq}&group=bat-b").status_code == 304
    ward = client.get(f"{ROUTE}?since={seq}&group=ward-001").get_json()
    assert (ward["gel_used"], [g["id"] for g in ward["groups"]]) == (1.5, ["ward-001"])
    assert {a["dispenser"] for a in ward["alerts_removed"]} == {"d0003"} and ward["alerts_added"] == []


def test_since_checks_its_value(fleet):
    client, _, _ = fleet
    assert client.get(f"{ROUTE}?since=-1").status_code == 400
    assert client.get(f"{ROUTE}?since=abc").status_code == 400
    assert client.get(f"{ROUTE}?since=1&group=nowhere").status_code == 404
    restored = client.get(f"{ROUTE}?since=999999")  # a number this database never gave: the full payload
    assert restored.status_code == 200 and len(restored.get_json()["dispensers"]) == 25


def test_gzip_when_accepted(fleet):
    client, use, _ = fleet
    use("d0001")
    plain = client.get(ROUTE)
    packed = client.get(ROUTE, headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers and packed.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(packed.data)) == plain.get_json()
    assert len(packed.data) < len(plain.data) / 4
    assert "Accept-Encoding" in packed.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    assert packed.headers["ETag"] != plain.headers["ETag"]  # strong ETags name the bytes sent
    for etag in (plain.headers["ETag"], packed.headers["ETag"]):
        again = client.get(ROUTE, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
    seq = plain.get_json()["seq"]
    use("d0002")
    delta = client.get(f"{ROUTE}?since={seq}", headers={"Accept-Encoding": "gzip"})
    assert delta.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(delta.data))["dispensers"][0]["id"] == "d0002"
    history = client.get("/api/history?bucket=minute", headers={"Accept-Encoding": "gzip"})
    assert len(json.loads(gzip.decompress(history.data))["points"]) >= 60


def test_maintenance_token_records_refills_only(fleet):
    client, use, _ = fleet
    use("d0001", 100)
    refill = client.post("/api/dispensers/d0001/refill", headers=bearer(MAINTENANCE))
    assert refill.status_code == 200 and refill.get_json()["dispenser"]["level_pct"] == 100
    assert client.get("/api/dispensers/d0001/refills").get_json()["refills"][0]["by"] == "maintenance"
    assert client.post("/api/dispensers/d0001/heartbeat", json={}, headers=bearer(MAINTENANCE)).status_code == 403
    assert client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=bearer(MAINTENANCE)).status_code == 403


def test_a_config_without_groups_keeps_its_payload(client, post):
    post({"gel_used": 1.5, "hands_detected": 1})
    data = client.get(ROUTE).get_json()
    assert data["groups"] == [] and SEED_KEYS | {"seq", "groups", "entries"} == set(data)
    assert all(d["group"] is None and d["path"] == [] for d in data["dispensers"])


def test_what_another_process_writes_reaches_the_payload_and_the_delta(fleet, other_process):
    client, _, _ = fleet
    seq = client.get(ROUTE).get_json()["seq"]
    other_process.ingest("d0005", [Event(gel_ul=2000, hands=1, ts=time.time(), event_id="x")])
    other_process.heartbeat("d0006", backlog=4, version="9.9", missed=2)  # no usage total moves, still seen
    other_process.refill("d0007", by="admin")
    delta = client.get(f"{ROUTE}?since={seq}").get_json()
    entries = by_id(delta["dispensers"])
    assert list(entries) == ["d0005", "d0006", "d0007"] and delta["gel_used"] == 2.0
    assert (entries["d0006"]["backlog"], entries["d0006"]["version"], entries["d0006"]["missed"]) == (4, "9.9", 2)
    assert entries["d0007"]["refilled_at"] is not None
    full = client.get(ROUTE).get_json()
    assert full["seq"] == delta["seq"] and by_id(full["dispensers"])["d0005"] == entries["d0005"]
    assert by_id(full["groups"])["ward-001"]["gel_used"] == 2.0


def test_a_dispenser_going_silent_gets_a_change_number_for_polls(write_config):
    """Offline comes with time, not with a write: the watchdog stamps it so `?since` carries it."""
    app = create_app(load_config(write_config(database="sqlite:///usage.db", offline_after_s=1)))
    client = app.test_client()
    try:
        client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=bearer(TOKENS["entree"]))
        memory = AlertMemory(None, 1)
        assert not check_alerts(app, memory)  # learns the state
        seq = client.get(ROUTE).get_json()["seq"]
        wait_for(lambda: not by_id(client.get(ROUTE).get_json()["dispensers"])["entree"]["online"], 5,
                 message="entree offline")
        assert client.get(f"{ROUTE}?since={seq}").status_code == 304  # no write yet: polls cannot know
        assert check_alerts(app, memory)
        delta = client.get(f"{ROUTE}?since={seq}").get_json()
        assert [(d["id"], d["online"]) for d in delta["dispensers"]] == [("entree", False)]
        assert {"dispenser": "entree", "name": "Entrée", "kind": "offline"} in delta["alerts_added"]
    finally:
        app.extensions["usage_store"].engine.dispose()


def test_history_and_export_of_a_group_sum_its_subtree_only(fleet):
    client, _, tokens = fleet
    for dispenser, gel in (("d0001", 1.5), ("d0012", 3.0), ("d0022", 2.0)):  # ward-001 and ward-003 are bat-a's
        resp = client.post("/mettre_a_jour_donnees", headers=bearer(tokens[dispenser]),
                           json={"gel_used": gel, "hands_detected": 1, "timestamp": "2026-01-05T10:15:00Z"})
        assert resp.status_code == 200
    span = "bucket=hour&from=2026-01-05T09:00:00Z&to=2026-01-05T12:00:00Z"

    def hands_and_gel(query: str) -> tuple[list[int], list[float]]:
        body = client.get(f"/api/history?{span}&{query}").get_json()
        return [p["hands_detected"] for p in body["points"]], [p["gel_used"] for p in body["points"]]

    assert hands_and_gel("group=bat-a") == ([0, 2, 0], [0, 3.5, 0])  # the building: its floors' wards' dispensers
    assert hands_and_gel("group=ward-002") == ([0, 1, 0], [0, 3.0, 0])
    assert hands_and_gel("group=site") == hands_and_gel("") == ([0, 3, 0], [0, 6.5, 0])
    assert hands_and_gel("dispenser=d0022") == ([0, 1, 0], [0, 2.0, 0])
    body = client.get(f"/api/history?{span}&group=ward-003").get_json()
    assert (body["group"], body["dispenser"]) == ("ward-003", None)
    missing = client.get(f"/api/history?{span}&group=nowhere")
    assert missing.status_code == 404 and "nowhere" in missing.get_json()["error"]
    assert client.get(f"/api/history?{span}&group=bat-a&dispenser=d0001").status_code == 400
    events = client.get("/api/export.csv?from=2026-01-05&to=2026-01-06&group=bat-a").get_data(as_text=True)
    assert [line.split(",")[1] for line in events.splitlines()[1:]] == ["d0001", "d0022"]
    days = client.get("/api/export.csv?bucket=day&from=2026-01-05&to=2026-01-06&group=ward-002").get_data(as_text=True)
    assert [line.split(",")[1] for line in days.splitlines()[1:]] == ["d0012"]
    assert client.get("/api/export.csv?group=nowhere").status_code == 404

"""The delta push on a real server process with 1,000 dispensers: per use, what changed and nothing else."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import socketio

from devkit.servers import ServerProcess, wait_for
from tests.helpers.auth import bearer
from tools.fleet_layout import write_fleet

FLEET = 1000
WARD_1 = ["site", "bat-a", "bat-a-e1", "ward-001"]


class Dashboard:
    """A Socket.IO client that records every figures and delta event with the size of its JSON."""

    def __init__(self, url: str, group: str | None | bool = False):
        self.full: list[dict] = []
        self.deltas: list[dict] = []
        self.sizes: dict[str, list[int]] = {"donnees_utilisation": [], "donnees_delta": []}
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("donnees_utilisation", lambda data: self._got("donnees_utilisation", self.full, data))
        self.sio.on("donnees_delta", lambda data: self._got("donnees_delta", self.deltas, data))
        self.sio.connect(url, transports=["websocket"], wait_timeout=10)
        wait_for(lambda: self.full, 10, message="the figures on connect")
        if group is not False:  # a client that speaks the delta protocol joins, all (None) or one group
            ack = self.sio.call("join", {"group": group}, timeout=10)
            assert ack["group"] == group and isinstance(ack["seq"], int)

    def _got(self, name: str, into: list[dict], data: dict) -> None:
        with self.lock:
            into.append(data)
            self.sizes[name].append(len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()))

    def close(self) -> None:
        self.sio.disconnect()


@pytest.fixture
def fleet_server(tmp_path: Path, server_factory) -> tuple[ServerProcess, Callable[[str], None]]:
    """A real server (eventlet) serving 1,000 dispensers in groups, and use(dispenser_id) to post one use."""
    config, tokens = write_fleet(tmp_path, FLEET, {"database": "sqlite:///usage.db", "async_mode": "eventlet"})
    server = server_factory(config=config)
    session = requests.Session()

    def use(dispenser: str) -> None:
        resp = session.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                            headers=bearer(tokens[dispenser]), timeout=10)
        assert resp.status_code == 200

    return server, use


@pytest.fixture
def dashboards(fleet_server) -> Iterator[Callable[..., Dashboard]]:
    opened: list[Dashboard] = []

    def open_one(group: str | None | bool = False) -> Dashboard:
        opened.append(Dashboard(fleet_server[0].url, group))
        return opened[-1]

    yield open_one
    for d in opened:
        d.close()


def test_per_use_the_dashboard_gets_totals_and_the_changed_dispenser_only(fleet_server, dashboards):
    server, use = fleet_server
    page, old_client = dashboards(None), dashboards()
    start = page.full[0]["seq"]
    use("d0003")  # its first use: it comes online, so the alert list moved and rides along once
    wait_for(lambda: page.deltas, 10, message="the first delta")
    first = page.deltas[0]
    assert first["base"] <= start < first["seq"] and [d["id"] for d in first["dispensers"]] == ["d0003"]
    # Its offline alert resolved, nothing raised: never the list of the other 999 offline dispensers.
    assert first["alerts_added"] == [] and first["gel_used"] == 1.5
    assert {"dispenser": "d0003", "kind": "offline"} in first["alerts_removed"] and "alerts" not in first
    use("d0003")
    wait_for(lambda: len(page.deltas) == 2, 10, message="the second delta")
    second = page.deltas[1]
    assert second["base"] == first["seq"] < second["seq"]
    assert (second["gel_used"], second["hands_detected"]) == (3.0, 2)  # the fleet's totals
    assert [d["id"] for d in second["dispensers"]] == ["d0003"] and second["dispensers"][0]["hands_detected"] == 2
    assert [g["id"] for g in second["groups"]] == WARD_1 and second["groups"][-1]["gel_used"] == 3.0
    assert "alerts_added" not in second and "alerts_removed" not in second  # unchanged: nothing about alerts
    full_size, delta_size = page.sizes["donnees_utilisation"][0], page.sizes["donnees_delta"][1]
    assert delta_size < 2048 < 100 * 2048 < full_size, (delta_size, full_size)
    # Old clients get the full figures, coalesced (at 1,000 dispensers), and no delta; the page that joined gets
    # no full figures after the first.
    wait_for(lambda: old_client.full[-1]["gel_used"] == 3.0, 10, message="the coalesced full figures")
    assert old_client.full[-1] == requests.get(server.url + "/obtenir_donnees_utilisation", timeout=10).json()
    assert len(page.full) == 1 and old_client.deltas == []
    print(f"\nper use at {FLEET} dispensers: delta {delta_size} B, full figures {full_size} B")


def test_a_group_room_gets_its_own_changes_and_totals(fleet_server, dashboards):
    _, use = fleet_server
    ward, building_b, fleet = dashboards("ward-002"), dashboards("bat-b"), dashboards(None)
    use("d0001")  # ward-001, building A: not for the first two
    use("d0011")  # ward-002, building B
    wait_for(lambda: ward.deltas and building_b.deltas and len(fleet.deltas) == 2, 10, message="the deltas")
    assert len(ward.deltas) == 1 and len(building_b.deltas) == 1
    mine = ward.deltas[0]
    assert [d["id"] for d in mine["dispensers"]] == ["d0011"] and [g["id"] for g in mine["groups"]] == ["ward-002"]
    assert (mine["gel_used"], mine["hands_detected"]) == (1.5, 1)  # the group's totals, not the fleet's
    assert {a["dispenser"] for a in mine["alerts_removed"]} == {"d0011"} and mine["alerts_added"] == []
    assert [g["id"] for g in building_b.deltas[0]["groups"]] == ["bat-b", "bat-b-e1", "ward-002"]
    assert mine["base"] <= ward.full[0]["seq"] < mine["seq"]  # no gap: applied without a re-fetch
    assert fleet.deltas[1]["base"] == fleet.deltas[0]["seq"] and fleet.deltas[1]["gel_used"] == 3.0
    assert ward.sio.call("join", {"group": "nowhere"}, timeout=10) == {"error": "unknown group 'nowhere'"}


def test_full_figures_go_out_at_most_once_a_second(fleet_server, dashboards):
    server, use = fleet_server
    old_client = dashboards()
    began = time.monotonic()
    for _ in range(12):
        use("d0500")
    wait_for(lambda: old_client.full[-1]["hands_detected"] == 12, 10, message="the last figures")
    elapsed = time.monotonic() - began
    assert len(old_client.full) - 1 <= elapsed + 1  # connect's own, then at most one a second
    assert old_client.full[-1] == requests.get(server.url + "/obtenir_donnees_utilisation", timeout=10).json()

"""Joining, on a real server process: deltas only after `join`, the join's acknowledgement and `since`, and the
documented client (docs/dashboard.md, run as printed) current at once after a disconnection."""

from __future__ import annotations

import importlib.util
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests
import socketio

from devkit.servers import ROOT, ServerProcess, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN
from tools.fleet_layout import write_fleet

GROUP = "ward-002"  # d0011-d0020, in building B; ward-001 (d0001-d0010) is in building A


@pytest.fixture
def fleet(tmp_path: Path, server_factory) -> tuple[ServerProcess, Callable[..., None]]:
    """30 dispensers in groups on a real eventlet server, and use(dispenser, n=1) posting n uses."""
    config, tokens = write_fleet(tmp_path, 30, {"database": "sqlite:///usage.db", "async_mode": "eventlet",
                                                "admin_token": ADMIN})
    server = server_factory(config=config)
    session = requests.Session()

    def use(dispenser: str, n: int = 1) -> None:
        for _ in range(n):
            resp = session.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                                headers=bearer(tokens[dispenser]), timeout=10)
            assert resp.status_code == 200, resp.text

    return server, use


class Recorder:
    """A Socket.IO client that records what it receives, by event."""

    def __init__(self, url: str):
        self.events: dict[str, list[dict]] = {"donnees_utilisation": [], "donnees_delta": []}
        self.order: list[str] = []
        self.sio = socketio.Client(reconnection=False)
        for name, into in self.events.items():
            self.sio.on(name, lambda data, name=name, into=into: (self.order.append(name), into.append(data)))
        self.sio.connect(url, transports=["websocket"], wait_timeout=10)
        wait_for(lambda: self.events["donnees_utilisation"], 10, message="the figures on connect")

    def join(self, **data: object) -> dict:
        """Emit `join` and return its acknowledgement; `ack` is recorded in `order` when it arrives."""
        answer = self.sio.call("join", data, timeout=10)
        self.order.append("ack")
        return answer


@pytest.fixture
def recorders(fleet) -> Iterator[Callable[[], Recorder]]:
    opened: list[Recorder] = []

    def open_one() -> Recorder:
        opened.append(Recorder(fleet[0].url))
        return opened[-1]

    yield open_one
    for r in opened:
        r.sio.disconnect()


def get(url: str, **params: object) -> dict:
    return requests.get(url + "/obtenir_donnees_utilisation", params=params, timeout=10).json()


def test_a_client_that_never_joins_gets_the_full_figures_and_no_delta(fleet, recorders):
    server, use = fleet
    seed_style, page = recorders(), recorders()
    assert page.join(group=None)["group"] is None
    for dispenser in ("d0001", "d0011", "d0021"):
        use(dispenser)
    # The page that joined gets a delta per use; the old client the coalesced full figures of the last one.
    wait_for(lambda: page.events["donnees_delta"] and page.events["donnees_delta"][-1]["hands_detected"] == 3, 10,
             message="the page's deltas")
    wait_for(lambda: seed_style.events["donnees_utilisation"][-1]["hands_detected"] == 3, 10,
             message="the full figures of the last use")
    assert seed_style.events["donnees_delta"] == []
    assert seed_style.events["donnees_utilisation"][-1] == get(server.url)


def test_the_join_acknowledgement_carries_the_seq_and_what_was_missed_since(fleet, recorders):
    server, use = fleet
    client = recorders()
    held = get(server.url)["seq"]
    assert client.join(group=None) == {"group": None, "seq": held}
    group_held = get(server.url, group=GROUP)["seq"]
    use("d0001", 2)  # outside the group
    use("d0012")  # inside
    now = get(server.url)["seq"]
    assert client.join(group=GROUP) == {"group": GROUP, "seq": now}  # without since: compare, then ?since
    # With the seq held: the delta of what the group missed comes first, then the acknowledgement.
    before = len(client.events["donnees_delta"])
    assert client.join(group=GROUP, since=group_held) == {"group": GROUP, "seq": now}
    missed = client.events["donnees_delta"][before:]
    assert client.order[-2:] == ["donnees_delta", "ack"] and len(missed) == 1
    assert missed[0]["base"] == group_held and missed[0]["seq"] == now
    assert [d["id"] for d in missed[0]["dispensers"]] == ["d0012"] and missed[0]["hands_detected"] == 1
    assert missed[0]["groups"] == [g for g in get(server.url, group=GROUP)["groups"] if g["id"] == GROUP]
    # Nothing of the group changed since: no delta. The fleet did change: its delta.
    use("d0002")
    now = get(server.url)["seq"]
    assert client.join(group=GROUP, since=missed[0]["seq"]) == {"group": GROUP, "seq": now}
    assert len(client.events["donnees_delta"]) == before + 1
    assert client.join(group=None, since=missed[0]["seq"]) == {"group": None, "seq": now}
    assert [d["id"] for d in client.events["donnees_delta"][-1]["dispensers"]] == ["d0002"]
    # A seq this server never gave (a database replaced): the acknowledged seq is below it, no delta.
    assert client.join(group=None, since=now + 1000) == {"group": None, "seq": now}
    assert len(client.events["donnees_delta"]) == before + 2
    assert "error" in client.join(group=None, since="12")
    assert "error" in client.join(group=None, since=-1)


def documented_client(tmp_path: Path) -> ModuleType:
    """The complete client of docs/dashboard.md, exactly as printed there."""
    doc = (ROOT / "docs" / "dashboard.md").read_text()
    section = doc[doc.index("A complete client, in Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "delta_client.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("delta_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def same_as_the_get(figures, url: str) -> bool:
    """The client's figures equal a fresh GET field by field (a group's seq may lag: then `?since` is a 304)."""
    params = {"group": figures.group} if figures.group else {}
    fresh = get(url, **params)
    dispensers, groups = fresh.pop("dispensers"), fresh.pop("groups")
    top = dict(figures.top)
    if figures.group:
        since = requests.get(url + "/obtenir_donnees_utilisation", params={**params, "since": top["seq"]}, timeout=10)
        if since.status_code != 304 or top["seq"] > fresh["seq"]:
            return False
        top["seq"] = fresh["seq"]
    return (top == fresh and figures.dispensers == {d["id"]: d for d in dispensers}
            and figures.groups == {g["id"]: g for g in groups})


@pytest.fixture
def follow(tmp_path: Path) -> Iterator[Callable[..., tuple]]:
    """follow(url, group, **options) of the documented client; every client disconnected at the end."""
    module, opened = documented_client(tmp_path), []

    def start(*args, **options) -> tuple:
        opened.append(module.follow(*args, **options))
        return opened[-1]

    yield start
    for _, sio in opened:
        sio.disconnect()


def test_the_documented_client_keeps_every_field_of_the_fleet_and_of_a_group(fleet, follow):
    server, use = fleet
    whole, _ = follow(server.url)
    ward, _ = follow(server.url, GROUP)
    for dispenser in ("d0011", "d0001", "d0015", "d0011"):
        use(dispenser)
    resp = requests.post(server.url + "/api/dispensers/d0015/refill", headers=bearer(ADMIN), timeout=10)
    assert resp.status_code == 200
    use("d0003")  # the last change outside the group: the group's client holds a seq behind the fleet's
    wait_for(lambda: same_as_the_get(whole, server.url), 10, message="the fleet's figures")
    wait_for(lambda: same_as_the_get(ward, server.url), 10, message="the group's figures")
    assert ward.top["seq"] < whole.top["seq"] == get(server.url)["seq"]
    assert whole.top["entries"] == 0 and ward.top["hands_detected"] == 3 and whole.top["hands_detected"] == 5
    assert (whole.refetches, ward.refetches) == (1, 1)  # the first GET only: no delta was missed


def test_the_documented_client_is_current_at_once_after_a_disconnection(fleet, follow):
    server, use = fleet
    figures, sio = follow(server.url, GROUP, reconnection_delay=2.5, randomization_factor=0)
    use("d0011")
    wait_for(lambda: same_as_the_get(figures, server.url), 10, message="the first use")
    wait_for(lambda: sio.transport() == "websocket", 10, message="the websocket")
    gone: list[float] = []
    sio.on("disconnect", lambda *_: gone.append(time.monotonic()))
    sio.eio.ws.sock.shutdown(socket.SHUT_RDWR)  # the network fails under it: no close handshake
    wait_for(lambda: gone, 10, message="the disconnection")
    use("d0012", 2)  # while it is away: it will get no push of these
    use("d0001")  # nor of this one, outside its group
    seq_after = get(server.url)["seq"]
    wait_for(lambda: sio.connected, 15, message="the reconnection")
    assert time.monotonic() - gone[0] >= 2.5  # away for the whole delay
    wait_for(lambda: same_as_the_get(figures, server.url), 10, message="the figures missed while away")
    assert get(server.url)["seq"] == seq_after  # current without any change after the reconnection
    assert figures.top["hands_detected"] == 3 and figures.refetches == 1

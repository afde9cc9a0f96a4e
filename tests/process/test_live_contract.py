"""The Socket.IO contract on a real server process: who gets deltas, the join rules, prompt full figures on a
small site, and offline flips the dashboards are sure to hear of."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import socketio

from devkit.servers import ServerProcess, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS

pytestmark = pytest.mark.slow
EVENT, DELTA = "donnees_utilisation", "donnees_delta"


class Client:
    """A python-socketio client keeping every full payload and delta it receives, in order."""

    def __init__(self, url: str):
        self.events: list[tuple[str, dict]] = []
        self.sio = socketio.Client(reconnection=False)
        self.sio.on(EVENT, lambda data: self.events.append((EVENT, data)))
        self.sio.on(DELTA, lambda data: self.events.append((DELTA, data)))
        self.sio.connect(url, transports=["websocket"], wait_timeout=10)
        wait_for(lambda: self.events, 10, message="the figures on connect")

    def full(self) -> list[dict]:
        return [data for name, data in self.events if name == EVENT]

    def deltas(self) -> list[dict]:
        return [data for name, data in self.events if name == DELTA]


@pytest.fixture
def clients() -> Iterator:
    made: list[Client] = []

    def connect(url: str) -> Client:
        made.append(Client(url))
        return made[-1]

    yield connect
    for client in made:
        client.sio.disconnect()


def post(url: str, hands: int = 1, dispenser: str = "entree") -> None:
    resp = requests.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.0, "hands_detected": hands},
                         headers=bearer(TOKENS[dispenser]), timeout=10)
    assert resp.status_code == 200, resp.text


def get(url: str) -> dict:
    return requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()


def online(payload: dict, ident: str = "entree") -> bool:
    return next(d for d in payload["dispensers"] if d["id"] == ident)["online"]


def test_a_client_that_never_joins_gets_full_figures_only(server_factory, clients):
    server = server_factory(async_mode="eventlet", check_interval_s=3600)
    seed = clients(server.url)
    for _ in range(3):
        post(server.url)
    wait_for(lambda: seed.full()[-1]["hands_detected"] == 3, 10, message="the third use's full figures")
    joined = clients(server.url)
    assert joined.sio.call("join", {"group": None}, timeout=10)["group"] is None
    post(server.url)
    wait_for(lambda: joined.deltas() and seed.full()[-1]["hands_detected"] == 4, 10, message="the fourth use")
    assert seed.deltas() == []  # the old protocol stays the old protocol: no delta it would not read


def test_a_small_site_sends_every_change_at_once_to_seed_clients(server_factory, clients):
    # A few hundred bytes of figures: each use goes out by itself, not coalesced to one push a second.
    server = server_factory(async_mode="eventlet", check_interval_s=3600)
    seed = clients(server.url)
    for _ in range(5):  # back to back: each POST answered before the next one starts
        post(server.url)
    wait_for(lambda: seed.full()[-1]["hands_detected"] == 5, 10, message="the fifth use")
    assert [p["hands_detected"] for p in seed.full()] == [0, 1, 2, 3, 4, 5]


BAD_JOINS = ["x", 1, [], [None], {}, {"group": {"a": 1}}, {"group": 3}, {"group": ["cardio"]}, {"since": 3},
             {"group": None, "since": -1}, {"group": None, "since": "3"}, {"grp": None}, "x" * 10_000]


def test_a_join_that_is_not_the_contract_is_refused_and_changes_nothing(server_factory, clients):
    server = server_factory(async_mode="eventlet", check_interval_s=3600)
    client = clients(server.url)
    for payload in BAD_JOINS:
        ack = client.sio.call("join", payload, timeout=10)
        assert set(ack) == {"error"}, (payload, ack)
    assert client.sio.call("join", {"group": "nowhere"}, timeout=10) == {"error": "unknown group 'nowhere'"}
    post(server.url)
    wait_for(lambda: client.full()[-1]["hands_detected"] == 1, 10, message="full figures, as before any join")
    assert client.deltas() == []  # still only in the full figures' room
    assert "Traceback" not in server.log() and "TypeError" not in server.log()


def test_the_join_ack_carries_the_current_change_number(server_factory, clients):
    server = server_factory(async_mode="eventlet", check_interval_s=3600)
    post(server.url)
    client = clients(server.url)
    ack = client.sio.call("join", {"group": None}, timeout=10)
    assert ack == {"group": None, "seq": get(server.url)["seq"]}


@pytest.mark.parametrize(("offline_after_s", "check_interval_s"), [(1, 3), (2, 1)])
def test_a_dispenser_that_reports_once_and_falls_silent_again_is_pushed_offline(
        server_factory, clients, offline_after_s, check_interval_s):
    server: ServerProcess = server_factory(async_mode="eventlet", offline_after_s=offline_after_s,
                                           check_interval_s=check_interval_s)
    post(server.url)
    board = clients(server.url)
    wait_for(lambda: not online(board.full()[-1]), 20, message="offline pushed")
    # Right after the check that saw it offline, it reports once and falls silent before the next check.
    for flip in range(2):
        post(server.url)
        wait_for(lambda: online(board.full()[-1]), 10, message="back online pushed")
        seen = len(board.full())
        wait_for(lambda seen=seen: any(not online(p) for p in board.full()[seen:]),
                 3 * (offline_after_s + check_interval_s + 1), message=f"offline pushed again ({flip})")

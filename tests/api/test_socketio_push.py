"""Socket.IO push through Flask-SocketIO's test client."""

from __future__ import annotations

import time

from app import socketio
from app.live import DELTA, EVENT
from app.live.watchdog import AlertMemory, check_alerts
from app.store.schema import dispensers
from app.store.sequence import next_seq
from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS


def payloads(sio) -> list[dict]:
    return [m["args"][0] for m in sio.get_received() if m["name"] == EVENT]


def test_a_client_gets_the_figures_on_connect(sio_client, client):
    received = payloads(sio_client)
    assert received == [client.get("/obtenir_donnees_utilisation").get_json()]


def test_a_client_that_asks_for_no_figures_gets_only_what_it_joined(app, client, post):
    """`auth: {"figures": false}` (a group's page): nothing at connection nor later, its deltas once joined."""
    sio = socketio.test_client(app, flask_test_client=client, auth={"figures": False})
    try:
        post({"gel_used": 1.5, "hands_detected": 1})
        assert sio.get_received() == []  # neither the connection's figures nor the full figures of a use
        ack = sio.emit("join", {"group": None}, callback=True)
        post({"gel_used": 1.5, "hands_detected": 1})
        received = sio.get_received()
        assert [m["name"] for m in received] == [DELTA], received
        assert received[0]["args"][0]["seq"] > ack["seq"] and received[0]["args"][0]["hands_detected"] == 2
    finally:
        sio.disconnect()


def test_every_accepted_post_is_pushed_with_exactly_the_get_payload(sio_client, client, post):
    sio_client.get_received()
    post({"gel_used": 1.5, "hands_detected": 1})
    pushed = payloads(sio_client)
    assert len(pushed) == 1
    assert pushed[0] == client.get("/obtenir_donnees_utilisation").get_json()
    assert pushed[0]["hands_detected"] == 1


def test_all_clients_get_the_push(app, client, post):
    clients = [socketio.test_client(app, flask_test_client=client) for _ in range(3)]
    for c in clients:
        c.get_received()
    post({"gel_used": 2, "hands_detected": 1})
    assert [payloads(c)[0]["gel_used"] for c in clients] == [2, 2, 2]
    for c in clients:
        c.disconnect()


def test_rejected_posts_push_nothing(sio_client, post, client):
    sio_client.get_received()
    post({"gel_used": -1})
    client.post("/mettre_a_jour_donnees", json={"gel_used": 1})
    assert payloads(sio_client) == []


def test_alert_change_is_pushed_without_any_post(app, sio_client, delta_client, client):
    """The periodic check pushes when a dispenser goes offline even though nothing was posted."""
    client.post("/mettre_a_jour_donnees", json={"gel_used": 1, "hands_detected": 1},
                headers=bearer(TOKENS['entree']))
    memory = AlertMemory(None, 1)
    assert not check_alerts(app, memory)  # the first check only learns the state
    sio_client.get_received()
    delta_client.get_received()
    assert not check_alerts(app, memory)
    assert payloads(sio_client) == []  # nothing changed, nothing pushed
    store = app.extensions["usage_store"]
    with store.writer() as conn:  # the dispenser was last heard from long ago (a write takes the next seq)
        conn.execute(dispensers.update().values(last_seen=1.0, updated_at=time.time(), seq=next_seq(conn).seq))
    assert check_alerts(app, memory)
    deltas = [m["args"][0] for m in delta_client.get_received() if m["name"] == DELTA]  # at once: what changed
    assert len(deltas) == 1 and [d["online"] for d in deltas[0]["dispensers"]] == [False] * 3
    assert {"dispenser": "entree", "name": "Entrée", "kind": "offline"} in deltas[0]["alerts_added"]
    # The full figures, for the clients that read only those (and never a delta).
    received = sio_client.get_received()
    assert [m for m in received if m["name"] == DELTA] == []
    pushed = [m["args"][0] for m in received if m["name"] == EVENT]
    wait_for(lambda: pushed.extend(payloads(sio_client)) or pushed, 3, message="the full figures")
    assert len(pushed) == 1
    assert {"dispenser": "entree", "name": "Entrée", "kind": "offline"} in pushed[0]["alerts"]

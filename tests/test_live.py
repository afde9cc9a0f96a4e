"""Socket.IO push through Flask-SocketIO's test client."""

from __future__ import annotations

import json
import time

from conftest import TOKENS
from socketio.packet import BINARY_EVENT, Packet

from app import live, socketio
from app.live import EVENT, AlertMemory, PayloadPacket, check_alerts
from app.schema import dispensers


def payloads(sio) -> list[dict]:
    return [m["args"][0] for m in sio.get_received() if m["name"] == EVENT]


def test_a_client_gets_the_figures_on_connect(sio_client, client):
    received = payloads(sio_client)
    assert received == [client.get("/obtenir_donnees_utilisation").get_json()]


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


def test_with_no_dashboard_a_post_builds_no_push_yet_answers_the_totals(app, client, post, monkeypatch):
    built = []
    real = live.current_payload
    monkeypatch.setattr(live, "current_payload", lambda: built.append(1) or real())
    post({"gel_used": 1.5, "hands_detected": 1})
    answer = post({"gel_used": 2, "hands_detected": 2}).get_json()
    assert (answer["gel_used"], answer["hands_detected"], built) == (3.5, 3, [])
    dashboard = socketio.test_client(app, flask_test_client=client)
    dashboard.get_received()
    answer = post({"gel_used": 1, "hands_detected": 1}).get_json()
    assert (answer["gel_used"], answer["hands_detected"]) == (4.5, 4)
    assert [p["hands_detected"] for p in payloads(dashboard)] == [4]
    dashboard.disconnect()


def test_requests_sharing_a_commit_share_its_push(app, sio_client, post):
    from app.services import get_store

    post({"gel_used": 1, "hands_detected": 1})
    sio_client.get_received()
    with app.app_context():
        store = get_store()
        # Another request of the same group commit: the push already sent carries its data.
        assert live.push_after(store.commits) is None
        assert payloads(sio_client) == []
        # A later commit is pushed again.
        post({"gel_used": 1, "hands_detected": 1})
        assert [p["hands_detected"] for p in payloads(sio_client)] == [2]
        assert live.push_after(store.commits - 1) is None


def test_a_post_committed_while_a_push_is_built_is_pushed_by_its_builder(app, sio_client, post, monkeypatch):
    from app.services import get_store

    post({"gel_used": 1, "hands_detected": 1})
    sio_client.get_received()
    built: list[int] = []
    depth = [0, 0]  # now, deepest
    real = live.push

    def push_meanwhile(payload=None):  # noqa: ANN001, ANN202
        built.append(get_store().commits)
        depth[0] += 1
        depth[1] = max(depth)
        if len(built) == 1:  # another POST commits while this push is being built: it does not build its own
            assert post({"gel_used": 1, "hands_detected": 1}).get_json()["hands_detected"] == 3
        try:
            return real(payload)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(live, "push", push_meanwhile)
    post({"gel_used": 1, "hands_detected": 1})
    # The builder built once more, after the commit that arrived meanwhile; nothing was built twice for one commit.
    assert built == [2, 3] and depth[1] == 1
    assert [p["hands_detected"] for p in payloads(sio_client)] == [3, 3]


def test_the_push_packet_encodes_like_the_standard_one(client):
    payload = client.get("/obtenir_donnees_utilisation").get_json()
    payload["dispensers"][0]["name"] = 'Entrée "B" <é>'
    fast, standard = PayloadPacket(data=[EVENT, payload]).encode(), Packet(data=[EVENT, payload]).encode()
    assert fast[0] == standard[0] == "2"
    assert json.loads(fast[1:]) == json.loads(standard[1:]) == [EVENT, payload]
    # Only the figures skip the search for bytes: any other event is still checked.
    assert PayloadPacket.data_is_binary(["other", {"blob": b"x"}])
    assert PayloadPacket(data=["other", {"blob": b"x"}]).packet_type == BINARY_EVENT


def test_rejected_posts_push_nothing(sio_client, post, client):
    sio_client.get_received()
    post({"gel_used": -1})
    client.post("/mettre_a_jour_donnees", json={"gel_used": 1})
    assert payloads(sio_client) == []


def test_alert_change_is_pushed_without_any_post(app, sio_client, client):
    """The periodic check pushes when a dispenser goes offline even though nothing was posted."""
    client.post("/mettre_a_jour_donnees", json={"gel_used": 1, "hands_detected": 1},
                headers={"Authorization": f"Bearer {TOKENS['entree']}"})
    memory = AlertMemory(None, 1)
    assert not check_alerts(app, memory)  # the first check only learns the state
    sio_client.get_received()
    assert not check_alerts(app, memory)
    assert payloads(sio_client) == []  # nothing changed, nothing pushed
    store = app.extensions["usage_store"]
    with store.writer() as conn:  # the dispenser was last heard from long ago (a write moves updated_at)
        conn.execute(dispensers.update().values(last_seen=1.0, updated_at=time.time()))
    assert check_alerts(app, memory)
    pushed = payloads(sio_client)
    assert len(pushed) == 1
    assert {"dispenser": "entree", "name": "Entrée", "kind": "offline"} in pushed[0]["alerts"]

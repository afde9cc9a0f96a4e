"""Pushes: none for nobody, one per group commit, at most one built at a time, encoded once."""

from __future__ import annotations

import json

from flask import current_app
from socketio.packet import BINARY_EVENT, Packet

from app import live, socketio
from app.extensions import get_store
from app.live import DELTA, EVENT, pushes
from app.live.packets import PayloadPacket
from devkit.servers import wait_for


def payloads(sio) -> list[dict]:
    return [m["args"][0] for m in sio.get_received() if m["name"] == EVENT]


def deltas(sio) -> list[dict]:
    return [m["args"][0] for m in sio.get_received() if m["name"] == DELTA]


def test_with_no_dashboard_a_post_builds_no_push_yet_answers_the_totals(app, client, post, monkeypatch):
    built = []
    real = live.current_payload

    def counted() -> dict:
        # Only this app's pushes: a coalesced push of an earlier test's app may still be due in this process.
        if current_app._get_current_object() is app:
            built.append(1)
        return real()

    monkeypatch.setattr(live, "current_payload", counted)
    post({"gel_used": 1.5, "hands_detected": 1})
    answer = post({"gel_used": 2, "hands_detected": 2}).get_json()
    assert (answer["gel_used"], answer["hands_detected"], built) == (3.5, 3, [])
    dashboard = socketio.test_client(app, flask_test_client=client)
    dashboard.get_received()
    answer = post({"gel_used": 1, "hands_detected": 1}).get_json()
    assert (answer["gel_used"], answer["hands_detected"]) == (4.5, 4)
    assert [p["hands_detected"] for p in payloads(dashboard)] == [4]
    dashboard.disconnect()


def test_requests_sharing_a_commit_share_its_push(app, delta_client, post):

    post({"gel_used": 1, "hands_detected": 1})
    delta_client.get_received()
    with app.app_context():
        seq = app.extensions["push_state"].pushed
        # Another request of the same group commit: the push already sent carries its data.
        assert pushes.push_after(seq) is False
        assert deltas(delta_client) == []
        # A later commit is pushed again.
        post({"gel_used": 1, "hands_detected": 1})
        assert [p["hands_detected"] for p in deltas(delta_client)] == [2]
        assert pushes.push_after(seq) is False


def test_a_post_committed_while_a_push_is_built_is_pushed_by_its_builder(app, delta_client, post, monkeypatch):

    post({"gel_used": 1, "hands_detected": 1})
    delta_client.get_received()
    built: list[int] = []
    depth = [0, 0]  # now, deepest
    real = pushes.PushState.send_deltas

    def push_meanwhile(self, figures, ids, seq):
        built.append(get_store().commits)
        depth[0] += 1
        depth[1] = max(depth)
        if len(built) == 1:  # another POST commits while this push is being built: it does not build its own
            assert post({"gel_used": 1, "hands_detected": 1}).get_json()["hands_detected"] == 3
        try:
            return real(self, figures, ids, seq)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(pushes.PushState, "send_deltas", push_meanwhile)
    post({"gel_used": 1, "hands_detected": 1})
    # Another round follows, in the background, after the commit that arrived meanwhile; none is nested.
    wait_for(lambda: len(built) == 2, 5, message="the second round")
    assert built == [2, 3] and depth[1] == 1
    received: list[dict] = []
    wait_for(lambda: received.extend(deltas(delta_client)) or len(received) >= 2, 5, message="both pushes")
    # Each round carries the changes it read; the last one ends on the final totals, each change once.
    assert [p["hands_detected"] for p in received] == [2, 3]
    assert received[1]["base"] == received[0]["seq"]


def test_the_push_packet_encodes_like_the_standard_one(client):
    payload = client.get("/obtenir_donnees_utilisation").get_json()
    payload["dispensers"][0]["name"] = 'Entrée "B" <é>'
    fast, standard = PayloadPacket(data=[EVENT, payload]).encode(), Packet(data=[EVENT, payload]).encode()
    assert fast[0] == standard[0] == "2"
    assert json.loads(fast[1:]) == json.loads(standard[1:]) == [EVENT, payload]
    # Only the figures skip the search for bytes: any other event is still checked.
    assert PayloadPacket.data_is_binary(["other", {"blob": b"x"}])
    assert PayloadPacket(data=["other", {"blob": b"x"}]).packet_type == BINARY_EVENT

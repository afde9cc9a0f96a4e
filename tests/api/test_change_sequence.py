"""The store's change sequence, on both databases: what another process writes is never missed."""

from __future__ import annotations

import time
from dataclasses import replace

from app.store import Event, Store


def test_rows_written_by_another_process_are_read_again(app):
    mine = app.extensions["usage_store"]
    other = Store(mine.engine.url.render_as_string(hide_password=False), mine.decls)  # a second process
    try:
        change, everything = mine.changes_since(-1)
        before = {r.id: r for r in everything}
        other.ingest("entree", [Event(gel_ul=1500, hands=1, ts=time.time(), event_id="x")])
        after, rows = mine.changes_since(change.seq)
        assert after.seq > change.seq and [r.id for r in rows] == ["entree"]
        assert (rows[0].gel_ul, rows[0].hands) == (before["entree"].gel_ul + 1500, 1)
        assert (after.gel_ul, after.hands) == (change.gel_ul + 1500, change.hands + 1)  # the kept totals
        # A heartbeat and a refill change no usage total, yet they are seen too.
        other.heartbeat("b12", backlog=4, version="9.9", missed=2)
        other.refill("entree", by="admin")
        latest, rows = mine.changes_since(after.seq)
        found = {r.id: r for r in rows}
        assert (found["b12"].backlog, found["b12"].version, found["b12"].missed) == (4, "9.9", 2)
        assert found["entree"].refill_gel_ul == 1500 and set(found) == {"b12", "entree"}
        assert mine.changes_since(latest.seq) == (latest, [])  # nothing more while nothing is written
    finally:
        other.engine.dispose()


def test_a_renamed_dispenser_is_noticed_by_running_processes(app):
    mine = app.extensions["usage_store"]
    change, rows = mine.changes_since(-1)
    assert {r.name for r in rows} >= {"Entrée"}
    decls = [replace(d, name="Hall") if d.id == "entree" else d for d in mine.decls]
    restarted = Store(mine.engine.url.render_as_string(hide_password=False), decls)
    try:
        _, renamed = mine.changes_since(change.seq)
        assert [(r.id, r.name) for r in renamed] == [("entree", "Hall")]  # the others were not rewritten
    finally:
        restarted.engine.dispose()


def test_an_unchanged_poll_never_hides_a_write_made_by_another_process(app, client):
    route = "/obtenir_donnees_utilisation"
    first = client.get(route)
    etag, seq = first.headers["ETag"], first.get_json()["seq"]
    assert client.get(route, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"{route}?since={seq}").status_code == 304
    mine = app.extensions["usage_store"]
    other = Store(mine.engine.url.render_as_string(hide_password=False), mine.decls)  # a second process
    try:
        other.ingest("entree", [Event(gel_ul=1500, hands=1, ts=time.time(), event_id="elsewhere")])
        changed = client.get(route, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.get_json()["gel_used"] == 1.5
        delta = client.get(f"{route}?since={seq}").get_json()
        assert [d["id"] for d in delta["dispensers"]] == ["entree"]
        # A write that moves no total (a heartbeat) ends the 304s too.
        etag, seq = changed.headers["ETag"], delta["seq"]
        assert client.get(route, headers={"If-None-Match": etag}).status_code == 304
        other.heartbeat("b12", backlog=3, version="9.9", missed=0)
        assert client.get(route, headers={"If-None-Match": etag}).status_code == 200
        assert [d["id"] for d in client.get(f"{route}?since={seq}").get_json()["dispensers"]] == ["b12"]
    finally:
        other.engine.dispose()

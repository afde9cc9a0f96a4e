"""The store's change tracking, on both databases: what another process writes is never missed."""

from __future__ import annotations

import time
from dataclasses import replace

from app.store import Event, Store


def test_rows_written_by_another_process_are_read_again(app):
    mine = app.extensions["usage_store"]
    other = Store(mine.engine.url.render_as_string(hide_password=False), mine.decls)  # a second process
    try:
        before = {r.id: r for r in mine.dispenser_rows()}
        version = mine.data_version()
        other.ingest("entree", [Event(gel_ul=1500, hands=1, ts=time.time(), event_id="x")])
        assert mine.data_version() != version
        version = mine.data_version()
        rows = {r.id: r for r in mine.dispenser_rows()}
        assert (rows["entree"].gel_ul, rows["entree"].hands) == (before["entree"].gel_ul + 1500, 1)
        assert rows["cafeteria"] == before["cafeteria"]
        # A heartbeat and a refill change no usage total, yet they are seen too.
        other.heartbeat("b12", backlog=4, version="9.9", missed=2)
        other.refill("entree", by="admin")
        assert mine.data_version() != version
        rows = {r.id: r for r in mine.dispenser_rows()}
        assert (rows["b12"].backlog, rows["b12"].version, rows["b12"].missed) == (4, "9.9", 2)
        assert rows["entree"].refill_gel_ul == 1500
        assert mine.data_version() == mine.data_version()  # stable while nothing is written
    finally:
        other.engine.dispose()


def test_a_renamed_dispenser_is_noticed_by_running_processes(app):
    mine = app.extensions["usage_store"]
    assert {r.name for r in mine.dispenser_rows()} >= {"Entrée"}
    decls = [replace(d, name="Hall") if d.id == "entree" else d for d in mine.decls]
    restarted = Store(mine.engine.url.render_as_string(hide_password=False), decls)
    try:
        assert "Hall" in {r.name for r in mine.dispenser_rows()}
    finally:
        restarted.engine.dispose()

"""Retention: raw events past keep_events_days are deleted in batches; the day and hour figures stay as they were."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.config import ConfigError, load_config
from app.store import Event, Store, retention
from app.store.retention import paced, purge_expired
from app.store.schema import events
from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, config_text
from tests.helpers.wards import ward_app

DAY = 86400


def count_events(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()


def test_old_events_go_and_the_figures_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(retention, "PURGE_BATCH", 7)  # several batches, and a last short one
    with ward_app(tmp_path, max_event_age_days=5, keep_events_days=10) as app:
        store, client = app.extensions["usage_store"], app.test_client()
        now = time.time()
        old = [Event(1500, 1, now - 20 * DAY + i, f"old-{i}") for i in range(30)]
        recent = [Event(1500, 1, now - DAY + i, f"new-{i}") for i in range(5)]
        store.ingest_shared("entree", old + recent)
        query = "/api/history?bucket=day&dispenser=entree&from={}&to={}"
        days = query.format(time.strftime("%Y-%m-%d", time.gmtime(now - 25 * DAY)),
                            time.strftime("%Y-%m-%d", time.gmtime(now + DAY)))
        before = client.get(days, headers=bearer(ADMIN)).get_json()
        totals = client.get("/obtenir_donnees_utilisation").get_json()
        paused: list[int] = []
        assert purge_expired(store, 10, now, pause=lambda: paused.append(1)) == 30
        assert len(paused) == 30 // 7  # a pause after each full batch: the write lock is let go between them
        assert count_events(store) == 5
        assert client.get(days, headers=bearer(ADMIN)).get_json() == before  # rollups kept
        assert client.get("/obtenir_donnees_utilisation").get_json()["hands_detected"] == totals["hands_detected"]
        assert purge_expired(store, 10, now) == 0
        metrics = client.get("/metrics").get_data(as_text=True)
        size = next(line for line in metrics.splitlines() if line.startswith("gel_database_bytes "))
        assert float(size.split()[1]) > 0


@pytest.mark.parametrize(("keep", "error"), [(0, "positive"), (31, "more than max_event_age_days"),
                                            ('"x"', "positive")])
def test_a_retention_shorter_than_what_dispensers_may_still_send_is_refused(tmp_path: Path, keep, error):
    path = tmp_path / "config.toml"
    text = config_text().replace("max_event_age_days = 100000", "max_event_age_days = 31")
    path.write_text(text.replace("[server]\n", f"[server]\nkeep_events_days = {keep}\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=error):
        load_config(path)


@pytest.mark.slow
def test_the_server_purges_at_start(tmp_path, server_factory, write_config):
    config = write_config(database=f"sqlite:///{tmp_path}/usage.db", async_mode="eventlet", max_event_age_days=5,
                          keep_events_days=10)
    cfg = load_config(config)
    store = Store(cfg.database, cfg.dispensers)  # the database filled before the server starts
    store.ingest_shared("entree", [Event(1500, 1, time.time() - 20 * DAY + i, f"old-{i}") for i in range(12)])
    store.engine.dispose()
    server = server_factory(config)
    wait_for(lambda: "retention: 12 events older than 10 days deleted" in server.log(), 10,
             message="the purge at start")


def test_the_event_export_says_when_its_range_goes_back_before_the_retained_events(tmp_path):
    with ward_app(tmp_path, max_event_age_days=5, keep_events_days=10) as app:
        client, now = app.test_client(), time.time()

        def export(days_back: int, bucket: str = "") -> dict:
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - days_back * DAY))
            resp = client.get(f"/api/export.csv?from={since}{bucket}")
            assert resp.status_code == 200
            resp.get_data()  # the stream read to its end gives the export slot back
            return resp.headers

        told = export(20)["X-Events-Retained-From"]
        cutoff = datetime.fromisoformat(told.replace("Z", "+00:00")).timestamp()
        assert now - 10 * DAY - 5 < cutoff <= time.time() - 10 * DAY + 1
        assert "X-Events-Retained-From" not in export(9)  # within what is kept
        assert "X-Events-Retained-From" not in export(20, "&bucket=day")  # rollups are kept for ever
    (tmp_path / "forever").mkdir()
    with ward_app(tmp_path / "forever") as app:  # no keep_events_days: nothing is ever deleted
        resp = app.test_client().get("/api/export.csv?from=2001-01-01")
        resp.get_data()
        assert "X-Events-Retained-From" not in resp.headers


def test_the_purge_rests_three_times_as_long_as_each_batch_took():
    now, slept = [100.0], []
    pause = paced(slept.append, 3.0, clock=lambda: now[0])
    now[0] += 0.05  # a batch of 50 ms
    pause()
    now[0] += 0.001  # a batch of 1 ms: at least 10 ms all the same
    pause()
    assert slept == pytest.approx([0.15, 0.01])

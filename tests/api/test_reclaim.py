"""SQLite space comes back after a purge: incremental auto-vacuum on new files, and on old ones once
`python -m app --config FILE compact` has run."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from app.config import load_config
from app.store import Store, vacuum
from app.store.retention import purge_expired
from app.store.schema import events
from devkit.servers import ROOT
from tests.helpers.config import config_text

DAY = 86400
OLD_ROWS = 40_000  # about 8 MiB of events and indexes: far more than one reclaim step of 1 MiB


def _store(tmp_path: Path) -> tuple[Path, Store]:
    path = tmp_path / "config.toml"
    path.write_text(config_text(database=f"sqlite:///{tmp_path}/usage.db", max_event_age_days=5,
                                keep_events_days=10), encoding="utf-8")
    cfg = load_config(path)
    return path, Store(cfg.database, cfg.dispensers)


def _fill(db_file: Path, now: float) -> None:
    """OLD_ROWS events 20 days old and 10 recent ones, written straight to the file (ingest would take long)."""
    db = sqlite3.connect(db_file, timeout=30)
    with db:
        db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {OLD_ROWS + 10})
                       INSERT INTO events (dispenser_id, event_id, ts, received_at, gel_ul, hands)
                       SELECT 'entree', printf('old-%040d', i),
                              CASE WHEN i > {OLD_ROWS} THEN {now - DAY} ELSE {now - 20 * DAY} END + i, {now}, 1500, 1
                       FROM n""")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _count(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()


def test_a_new_database_shrinks_after_a_purge(tmp_path):
    _, store = _store(tmp_path)
    db_file = tmp_path / "usage.db"
    assert vacuum.auto_vacuum_mode(db_file) == vacuum.INCREMENTAL  # created with it
    now = time.time()
    _fill(db_file, now)
    full = db_file.stat().st_size
    assert full > 6 * 2**20
    assert purge_expired(store, 10, now) == OLD_ROWS
    assert _count(store) == 10
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA freelist_count").scalar_one() == 0
    store.engine.dispose()  # the last connection checkpoints the WAL into the file
    assert db_file.stat().st_size < full / 4, (full, db_file.stat().st_size)


def test_reclaim_moves_one_step_per_transaction(tmp_path, monkeypatch):
    _, store = _store(tmp_path)
    now = time.time()
    _fill(tmp_path / "usage.db", now)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(events).where(events.c.ts < now - 10 * DAY))
    paused: list[int] = []
    monkeypatch.setattr(vacuum, "VACUUM_PAGES", 100)
    freed = vacuum.reclaim(store, pause=lambda: paused.append(1))
    assert freed > 1000  # the whole free list
    assert len(paused) == -(-freed // 100)  # and never more than 100 pages under one write lock
    assert vacuum.reclaim(store) == 0
    store.engine.dispose()


def test_compact_switches_an_old_database_and_it_then_shrinks(tmp_path):
    db_file = tmp_path / "usage.db"
    legacy = sqlite3.connect(db_file)  # a database made before this release: auto_vacuum none
    legacy.execute("CREATE TABLE placeholder (x)")
    legacy.close()
    config, store = _store(tmp_path)
    assert vacuum.auto_vacuum_mode(db_file) == 0  # opening it does not change that
    now = time.time()
    _fill(db_file, now)
    full = db_file.stat().st_size
    assert purge_expired(store, 10, now) == OLD_ROWS
    assert vacuum.reclaim(store) == 0  # nothing to give back without incremental auto-vacuum
    # Run while the server's engine still holds connections, as on a running site.
    run = subprocess.run([sys.executable, "-m", "app", "--config", str(config), "compact"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "incremental auto-vacuum on" in run.stdout
    assert vacuum.auto_vacuum_mode(db_file) == vacuum.INCREMENTAL
    assert db_file.stat().st_size < full / 4
    assert _count(store) == 10  # nothing kept was lost
    again = subprocess.run([sys.executable, "-m", "app", "--config", str(config), "compact"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    store.engine.dispose()


def test_compact_refuses_postgresql(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(config_text(database="postgresql://postgres@127.0.0.1:5432/postgres"), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "app", "--config", str(path), "compact"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "PostgreSQL" in run.stderr

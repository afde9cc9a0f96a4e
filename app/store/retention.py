"""Retention: raw events older than `keep_events_days` deleted in small batches; rollups, refills, outages and
the census are kept, so history by hour and day, compliance and reports do not change."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import sqlalchemy as sa

from app.store.database import Database
from app.store.schema import events
from app.store.vacuum import reclaim

log = logging.getLogger(__name__)
PURGE_BATCH = 250  # rows per transaction: the write lock (and the loop) held for about 10 ms, POSTs go in between
# After each batch the purge rests PACE times as long as the batch took: under eventlet each batch also holds the
# one loop that serves HTTP, so this bounds the purge to a quarter of it (bench `retention`: POST p99 <= 2x).
PACE = 3.0


def purge_events_before(db: Database, before: float, pause: Callable[[], None] = lambda: None) -> int:
    """Delete the raw events whose dose time is before `before`, a batch at a time; return how many."""
    oldest = sa.select(events.c.id).where(events.c.ts < before).order_by(events.c.ts).limit(PURGE_BATCH)
    total = 0
    while True:
        with db.writer() as conn:
            deleted = conn.execute(sa.delete(events).where(events.c.id.in_(oldest.scalar_subquery()))).rowcount
        total += deleted
        reclaim(db, steps=1)  # the pages this batch freed go back to the file system, in their own short write
        if deleted < PURGE_BATCH:
            return total
        pause()  # let the requests waiting for the write lock (or the event loop) go first


def purge_expired(db: Database, keep_days: float, now: float | None = None,
                  pause: Callable[[], None] = lambda: None) -> int:
    """One retention pass: events older than `keep_days` deleted, logged when there were any."""
    now = time.time() if now is None else now
    started = time.monotonic()
    deleted = purge_events_before(db, now - keep_days * 86400, pause)
    if deleted:
        reclaim(db, pause)  # what the batches' steps left: the SQLite file shrinks (incremental auto-vacuum)
    if deleted:
        log.info("retention: %d events older than %g days deleted in %.1f s", deleted, keep_days,
                 time.monotonic() - started)
    return deleted


def database_bytes(db: Database) -> float:
    """The database's size on disk: SQLite's file and its WAL, or PostgreSQL's pg_database_size."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        return float(sum(os.path.getsize(p) for p in (path, path + "-wal") if p and os.path.exists(p)))
    with db.engine.connect() as conn:
        return float(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one())


RETENTION_EVERY_S = 3600.0


def paced(sleep: Callable[[float], None], pace: float = PACE,
          clock: Callable[[], float] = time.monotonic) -> Callable[[], None]:
    """A pause that rests `pace` times as long as the work since the previous pause took (at least 10 ms)."""
    last = clock()

    def pause() -> None:
        nonlocal last
        sleep(max(0.01, (clock() - last) * pace))
        last = clock()

    return pause


def run_retention(db: Database, keep_days: float, sleep: Callable[[float], None]) -> None:
    """Forever: a retention pass at start, then hourly (a background task; `sleep` is the server's own)."""
    while True:
        try:
            purge_expired(db, keep_days, pause=paced(sleep))
        except Exception:  # a locked or full database this hour: try again the next
            log.exception("retention pass failed")
        sleep(RETENTION_EVERY_S)

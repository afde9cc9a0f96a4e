"""SQLite space given back to the file system: incremental auto-vacuum in short steps, and the one-off VACUUM
that switches an existing database to it (`python -m app --config FILE compact`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from app.store.database import Database

VACUUM_PAGES = 256  # pages (1 MiB at 4 KiB) moved per transaction: the write lock is held for milliseconds
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def _sqlite_path(db: Database) -> str | None:
    url = db.engine.url
    return url.database if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") else None


def auto_vacuum_mode(path: str | Path) -> int:
    """The database's auto_vacuum mode: 0 none, 1 full, 2 incremental."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    finally:
        conn.close()


def reclaim(db: Database, pause: Callable[[], None] = lambda: None, steps: int | None = None) -> int:
    """Give free pages back to the file system, VACUUM_PAGES per write transaction; return the pages freed.

    A no-op on PostgreSQL (autovacuum) and on a SQLite file not yet switched to incremental auto-vacuum.
    `steps` bounds the transactions (None: until the free list is empty)."""
    if _sqlite_path(db) is None:
        return 0
    freed = 0
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if raw.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
            return 0
        while steps is None or steps > 0:
            before = raw.execute("PRAGMA freelist_count").fetchone()[0]
            if before == 0:
                break
            # executescript steps the pragma to its end (execute() would move a single page) in its own short
            # BEGIN IMMEDIATE, so it queues behind the POSTs' writes like any writer.
            try:
                raw.executescript(f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({VACUUM_PAGES}); COMMIT;")
            except sqlite3.Error:
                if raw.in_transaction:  # a full disk mid-step: nothing half-done goes back to the pool
                    raw.execute("ROLLBACK")
                raise
            freed += before - raw.execute("PRAGMA freelist_count").fetchone()[0]
            steps = None if steps is None else steps - 1
            pause()
        if steps is None:  # the file shrinks when the WAL is copied back (the automatic checkpoints do it too)
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return freed


def compact(path: str | Path) -> tuple[int, int]:
    """Switch an existing SQLite file to incremental auto-vacuum with one VACUUM; return sizes before and after.

    VACUUM rewrites the file in one write transaction: writers wait (busy timeout) and a dispenser whose POST
    times out keeps its events spooled and resends them. It needs free space of about the file's size."""
    before = os.path.getsize(path)
    free = shutil.disk_usage(Path(path).resolve().parent).free
    if free < before * 1.1:
        raise RuntimeError(f"VACUUM needs about {before // 2**20 + 1} MiB free next to the database, "
                           f"{free // 2**20} MiB are")
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        mode = int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    finally:
        conn.close()
    if mode != INCREMENTAL:
        raise RuntimeError("the database did not switch to incremental auto-vacuum")
    return before, os.path.getsize(path)

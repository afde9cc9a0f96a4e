"""What the figures re-read cheaply: changed dispenser rows, changed recent use, and the data version."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Hashable

import sqlalchemy as sa

from app.schema import dispensers, rollups
from app.store.database import Database, total
from app.store.reads import recent_use

FEW = 20  # beyond this many changed dispensers, one read of them all is cheaper than one per dispenser
# Statements built once: their construction costs more than running them on a few rows.
ALL_DISPENSERS = sa.select(dispensers)
# Every write to a dispenser row moves its updated_at (and an ingest its events): what changed is found cheaply.
ROW_STAMPS = sa.select(dispensers.c.id, dispensers.c.updated_at, dispensers.c.events)
ROWS_OF = sa.select(dispensers).where(dispensers.c.id.in_(sa.bindparam("ids", expanding=True)))
CHANGES = sa.select(sa.func.count(), total(dispensers.c.events), sa.func.sum(dispensers.c.updated_at))
RECENT_OF = (
    sa.select(rollups.c.dispenser_id, total(rollups.c.gel_ul))
    .where(rollups.c.size == "hour", rollups.c.dispenser_id.in_(sa.bindparam("ids", expanding=True)),
           rollups.c.start >= sa.bindparam("window"))
    .group_by(rollups.c.dispenser_id)
)


class RowCache:
    """Every dispenser row with its running totals; only the rows whose stamp moved are read in full."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.rows: dict[str, sa.Row] = {}  # dispenser id -> its last full row
        self.lock = threading.Lock()

    def read(self) -> list[sa.Row]:
        """The rows, in the database's order; three columns per row and the changed rows are all that is read."""
        with self.engine.connect() as conn:
            stamps = conn.execute(ROW_STAMPS).all()
            with self.lock:
                cache = self.rows
                stale = [i for i, updated, n in stamps
                         if (hit := cache.get(i)) is None or hit.updated_at != updated or hit.events != n]
            if stale:
                if len(stale) > FEW:
                    fresh = conn.execute(ALL_DISPENSERS).all()
                else:
                    fresh = conn.execute(ROWS_OF, {"ids": stale}).all()
                with self.lock:
                    self.rows = cache = {**cache, **{r.id: r for r in fresh}}
        # A row is never older than its stamp (read after it), so the next call does not re-read it for nothing.
        return [cache[i] for i, _, _ in stamps if i in cache]


class RecentUseCache:
    """Recent use per dispenser, re-read only for the dispensers whose event count moved.

    Rollups only change with new events, and a new event always moves its dispenser's `events` count, so a
    dispenser whose count and hour window are unchanged has an unchanged sum.
    """

    def __init__(self, db: Database):
        self.db = db
        self.window: int | None = None
        self.entries: dict[str, tuple[int, int | None]] = {}  # dispenser -> (events count, recent use)
        self.lock = threading.Lock()

    def read(self, since: float, events_by_dispenser: dict[str, int]) -> dict[str, int]:
        """Microlitres used per dispenser since `since` (hour buckets), for the dispensers given.

        Pass the counts read BEFORE calling this: a write in between then only makes the next call re-read.
        """
        window = self.db.bucket_start("hour", since)
        with self.lock:
            if self.window != window:
                self.window, self.entries = window, {}
            cache = self.entries
            stale = [d for d, n in events_by_dispenser.items() if d not in cache or cache[d][0] != n]
            if stale:
                if len(stale) > FEW:
                    found = recent_use(self.db, since)
                else:
                    with self.db.engine.connect() as conn:
                        found = {d: int(g) for d, g in conn.execute(RECENT_OF, {"ids": stale, "window": window})}
                for d in stale:
                    cache[d] = (events_by_dispenser[d], found.get(d))
            return {d: cache[d][1] for d in events_by_dispenser if cache[d][1] is not None}


class DataVersion:
    """A value that changes whenever any connection or process changes the figures' data.

    On a SQLite file it is `PRAGMA data_version`, read on a connection of its own: the value only moves for
    commits made by *other* connections, so the pool's connections cannot serve. Elsewhere (PostgreSQL, a
    SQLite URI or memory database) it is a one-row aggregate of the dispenser rows' change stamps.
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        self.sqlite_path = path if path and path != ":memory:" and not path.startswith("file:") else None
        self.conn: sqlite3.Connection | None = None
        self.lock = threading.Lock()

    def read(self) -> Hashable:
        """The current version; equal values mean nothing the figures show was written in between."""
        if self.sqlite_path is None:
            with self.engine.connect() as conn:
                return tuple(conn.execute(CHANGES).one())
        with self.lock:
            if self.conn is None:
                self.conn = sqlite3.connect(self.sqlite_path, check_same_thread=False, isolation_level=None)
            return self.conn.execute("PRAGMA data_version").fetchone()[0]

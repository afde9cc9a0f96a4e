"""What the figures re-read cheaply: the recent use of the dispensers whose event count moved."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.store.database import Database, total
from app.store.reads import recent_use
from app.store.schema import rollups

FEW = 20  # beyond this many changed dispensers, one read of them all is cheaper than one per dispenser
# Built once: its construction costs more than running it on a few rows.
RECENT_OF = (
    sa.select(rollups.c.dispenser_id, total(rollups.c.gel_ul))
    .where(rollups.c.size == "hour", rollups.c.dispenser_id.in_(sa.bindparam("ids", expanding=True)),
           rollups.c.start >= sa.bindparam("window"))
    .group_by(rollups.c.dispenser_id)
)


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

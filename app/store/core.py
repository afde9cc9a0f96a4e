"""The Store: one object the app holds for every read and write of usage data."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator

import sqlalchemy as sa

from app.config import DispenserDecl
from app.store.caches import RecentUseCache
from app.store.contact import set_mode
from app.store.database import Database
from app.store.migrations import migrate
from app.store.reads import export_buckets, export_events, history, refill_history
from app.store.sequence import Change, changed_since, current, ids_changed_since
from app.store.watch import DataVersion
from app.store.writes import Event, GroupCommit, Ingested, heartbeat, refill, sync_dispensers, touch


class Store(Database):
    """All reads and writes of usage data, portable between SQLite and PostgreSQL."""

    def __init__(self, url: str, decls: Iterable[DispenserDecl] = (), timezone: str | None = None,
                 offline_after_s: float = Database.offline_after_s):
        super().__init__(url, timezone)
        self.offline_after_s = offline_after_s
        self.decls = tuple(decls)
        self.group_commit = GroupCommit(self)
        self.recent_cache = RecentUseCache(self)
        self.data_version = DataVersion(self.engine)
        self.last_change: tuple[tuple[int, int] | None, Change] = (None, Change(-1, 0, 0))  # (data version, change)
        migrate(self.engine)
        self.sync_dispensers(self.decls)

    @property
    def commits(self) -> int:
        """Group commits made by ingest_shared() in this process."""
        return self.group_commit.commits

    def sync_dispensers(self, decls: Iterable[DispenserDecl]) -> None:
        """Create or rename the declared dispensers; their totals are kept."""
        sync_dispensers(self, decls)

    def ingest(self, dispenser_id: str, batch: list[Event], now: float | None = None) -> tuple[int, int]:
        """Store a batch all-or-nothing; return (accepted, duplicates). Repeated event_ids count once."""
        return self.group_commit.ingest(dispenser_id, batch, time.time() if now is None else now)

    def ingest_shared(self, dispenser_id: str, batch: list[Event]) -> Ingested:
        """Like ingest(), but concurrent callers share one transaction (see GroupCommit.ingest_shared)."""
        return self.group_commit.ingest_shared(dispenser_id, batch)

    def refill(self, dispenser_id: str, by: str, now: float | None = None) -> None:
        """Record a full reservoir: the level restarts from capacity; usage totals are untouched."""
        refill(self, dispenser_id, by, time.time() if now is None else now)

    def heartbeat(self, dispenser_id: str, backlog: int | None, version: str | None, missed: int | None,
                  now: float | None = None, stuck: bool = False) -> None:
        """Note that a dispenser is alive, with its spool backlog, version, missed presences and stuck sensor."""
        heartbeat(self, dispenser_id, backlog, version, missed, time.time() if now is None else now, stuck)

    def set_mode(self, dispenser_id: str, mode: str) -> int:
        """Put a dispenser in "test" or "live" mode; return the change sequence number of the write."""
        return set_mode(self, dispenser_id, mode)

    def touch(self, ids: list[str]) -> int:
        """Give these dispensers a new change number with no other write (a flag moved with time); return it."""
        return touch(self, ids)

    def changes_since(self, since: int) -> tuple[Change, list[sa.Row]]:
        """The last change (number and totals) and the dispenser rows written after change `since` (-1: all).

        Every write stamps the rows it changes with its number, so this reads as many rows as changed, through
        the seq index, whatever the size of the fleet, and misses nothing another process wrote.
        """
        version = self.data_version.read()  # before the counter: a commit after this read moves the next one
        seen_at, seen = self.last_change
        if version is not None and version == seen_at and seen.seq == since:
            return seen, []  # nothing committed anywhere since the counter read `seen`: it still holds
        with self.engine.connect() as conn:
            change = current(conn)  # before the rows: a row may be newer than it, never older
            # Nothing numbered after `since`: no row to look for (one newer than the counter comes with the next).
            rows = changed_since(conn, since) if change.seq != since else []
        self.last_change = (version, change)
        return change, rows

    def ids_changed_since(self, since: int) -> list[str]:
        """The ids of the dispensers written after change `since`, declared or not (through the seq index)."""
        with self.engine.connect() as conn:
            return ids_changed_since(conn, since)

    def recent_use_for(self, since: float, events_by_dispenser: dict[str, int]) -> dict[str, int]:
        """recent_use() for the dispensers given, re-reading only those whose event count moved."""
        return self.recent_cache.read(since, events_by_dispenser)

    def history(self, size: str, start: float, end: float,
                dispenser_ids: Collection[str] | None = None) -> list[sa.Row]:
        """Totals per bucket in [start, end), over every dispenser or those given, summed in SQL from the rollups."""
        return history(self, size, start, end, dispenser_ids)

    def export_events(self, start: float, end: float, dispenser_ids: Collection[str] | None = None,
                      include_test: bool = False) -> Iterator[sa.Row]:
        """Stream the events with a dose time in [start, end), oldest first, without loading them all."""
        return export_events(self, start, end, dispenser_ids, include_test=include_test)

    def export_buckets(self, size: str, start: float, end: float,
                       dispenser_ids: Collection[str] | None = None, include_test: bool = False) -> list[sa.Row]:
        """Totals per bucket and dispenser in [start, end), from the rollups."""
        return export_buckets(self, size, start, end, dispenser_ids, include_test)

    def refill_history(self, dispenser_id: str | None = None, limit: int = 100) -> list[sa.Row]:
        """The latest refills, newest first."""
        return refill_history(self, dispenser_id, limit)

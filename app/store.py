"""The usage store: every event a row, running totals and rollups kept in the same transaction."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.config import DispenserDecl
from app.migrations import migrate
from app.schema import dispensers, events, make_engine, refills, rollups

BUCKETS = ("minute", "hour", "day")


def _total(column: sa.ColumnElement) -> sa.ColumnElement:
    """SUM as a 64-bit integer (PostgreSQL would otherwise return NUMERIC, i.e. Decimal)."""
    return sa.cast(sa.func.sum(column), sa.BigInteger)


FEW = 20  # beyond this many changed dispensers, one read of them all is cheaper than one per dispenser
# Built once: constructing these expressions per call was ~half of a payload rebuild (cProfile, batches of 100).
ALL_DISPENSERS = sa.select(dispensers)
# Every write to a dispenser row moves its updated_at (and an ingest its events): what changed is found cheaply.
ROW_STAMPS = sa.select(dispensers.c.id, dispensers.c.updated_at, dispensers.c.events)
ROWS_OF = sa.select(dispensers).where(dispensers.c.id.in_(sa.bindparam("ids", expanding=True)))
CHANGES = sa.select(sa.func.count(), _total(dispensers.c.events), sa.func.sum(dispensers.c.updated_at))
TOTALS = sa.select(_total(dispensers.c.gel_ul), _total(dispensers.c.hands))
RECENT_OF = (
    sa.select(rollups.c.dispenser_id, _total(rollups.c.gel_ul))
    .where(rollups.c.size == "hour", rollups.c.dispenser_id.in_(sa.bindparam("ids", expanding=True)),
           rollups.c.start >= sa.bindparam("window"))
    .group_by(rollups.c.dispenser_id)
)


@dataclass(frozen=True)
class Event:
    """One validated use: `gel_ul` microlitres, `hands` hands, dose time `ts` (epoch seconds)."""

    gel_ul: int
    hands: int
    ts: float
    event_id: str | None = None


class Ingested(NamedTuple):
    """What ingest_shared() did: counts, the totals as committed, and the number of its group commit."""

    accepted: int
    duplicates: int
    gel_used: float
    hands_detected: int
    commit: int


class Store:
    """All reads and writes of usage data, portable between SQLite and PostgreSQL."""

    def __init__(self, url: str, decls: Iterable[DispenserDecl] = (), timezone: str | None = None):
        self.engine = make_engine(url)
        self._version_conn: sqlite3.Connection | None = None
        self._version_lock = threading.Lock()
        self._group: list[list[Any]] = []  # ingest_shared() callers waiting for the next commit
        self._group_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._ingest_stmts: tuple | None = None
        self.commits = 0  # group commits made by ingest_shared() in this process
        self._recent: dict[str, tuple[int, int | None]] = {}  # dispenser -> (events count, recent use)
        self._recent_window: int | None = None
        self._recent_lock = threading.Lock()
        self._rows: dict[str, sa.Row] = {}  # dispenser id -> its last full row (dispenser_rows)
        self._rows_lock = threading.Lock()
        self.tz = ZoneInfo(timezone) if timezone else None
        self.decls = tuple(decls)
        migrate(self.engine)
        self.sync_dispensers(self.decls)

    def _insert(self, table: sa.Table):
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    @contextmanager
    def writer(self) -> Iterator[sa.Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite, so writers queue instead of deadlocking)."""
        with self.engine.connect().execution_options(writer=True) as conn, conn.begin():
            yield conn

    def sync_dispensers(self, decls: Iterable[DispenserDecl]) -> None:
        """Create or rename the declared dispensers; their totals are kept."""
        now = time.time()
        with self.writer() as conn:
            for d in decls:
                stmt = self._insert(dispensers).values(
                    id=d.id, name=d.name, capacity_ml=d.capacity_ml, gel_ul=0, hands=0, events=0,
                    refill_gel_ul=0, missed=0, updated_at=now,
                )
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=[dispensers.c.id],
                    # updated_at too, so that other processes notice a renamed dispenser.
                    set_={"name": stmt.excluded.name, "capacity_ml": stmt.excluded.capacity_ml,
                          "updated_at": stmt.excluded.updated_at},
                ))

    def bucket_start(self, size: str, ts: float) -> int:
        """Start (epoch seconds) of the minute, hour or local day holding `ts`."""
        if size == "minute":
            return int(ts // 60 * 60)
        if size == "hour":
            return int(ts // 3600 * 3600)
        local = datetime.fromtimestamp(ts, self.tz)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())

    def ingest(self, dispenser_id: str, batch: list[Event], now: float | None = None) -> tuple[int, int]:
        """Store a batch all-or-nothing; return (accepted, duplicates). Repeated event_ids count once."""
        now = time.time() if now is None else now
        with self.writer() as conn:
            return self._ingest_group(conn, [(dispenser_id, batch)], now)[0]

    def ingest_shared(self, dispenser_id: str, batch: list[Event]) -> Ingested:
        """Like ingest(), but concurrent callers share one transaction (group commit: one fsync for all).

        The totals of all dispensers are read in the same transaction (profiled: a separate read cost as much
        as the whole ingest); `commit` numbers the groups this store committed, in order.

        Each caller returns only once the transaction holding its batch has committed; if it fails, every
        caller in it gets the exception, as each would have alone. Batches keep their arrival order, so a
        repeated event_id counts for the first request that carried it.
        """
        item: list[Any] = [dispenser_id, batch, None, None, False]  # id, batch, result, error, done
        with self._group_lock:
            self._group.append(item)
        time.sleep(0)  # a switch: requests already read (other greenthreads or threads) join this group
        with self._commit_lock:
            if not item[4]:
                with self._group_lock:
                    group, self._group = self._group, []
                try:
                    with self.writer() as conn:
                        results = self._ingest_group(conn, [(it[0], it[1]) for it in group], time.time())
                        gel_ul, hands = conn.execute(TOTALS).one()
                    self.commits += 1
                    for it, (accepted, duplicates) in zip(group, results, strict=True):
                        it[2] = Ingested(accepted, duplicates, (gel_ul or 0) / 1000, hands or 0, self.commits)
                except Exception as exc:
                    for it in group:
                        it[3] = exc
                for it in group:
                    it[4] = True
        if item[3] is not None:
            raise item[3]
        return item[2]

    def _statements(self) -> tuple:
        """The three ingest statements, built once (profiled: rebuilding them was ~25% of a POST)."""
        if self._ingest_stmts is None:
            ins = self._insert(events).on_conflict_do_nothing(
                index_elements=[events.c.dispenser_id, events.c.event_id]
            ).returning(events.c.dispenser_id, events.c.event_id, events.c.ts, events.c.gel_ul, events.c.hands)
            last, newest = dispensers.c.last_event_at, sa.bindparam("b_newest", type_=sa.Double)
            now = sa.bindparam("b_now", type_=sa.Double)
            touch = sa.update(dispensers).where(dispensers.c.id == sa.bindparam("b_id")).values(
                last_seen=now, updated_at=now)
            add = touch.values(
                gel_ul=dispensers.c.gel_ul + sa.bindparam("b_gel", type_=sa.BigInteger),
                hands=dispensers.c.hands + sa.bindparam("b_hands", type_=sa.BigInteger),
                events=dispensers.c.events + sa.bindparam("b_events", type_=sa.BigInteger),
                last_event_at=sa.case((last.is_(None) | (last < newest), newest), else_=last),
            )
            up = self._insert(rollups)
            # RETURNING makes insertmanyvalues send one multi-row statement for all the parameter sets.
            roll = up.on_conflict_do_update(
                index_elements=[rollups.c.size, rollups.c.dispenser_id, rollups.c.start],
                set_={
                    "gel_ul": rollups.c.gel_ul + up.excluded.gel_ul,
                    "hands": rollups.c.hands + up.excluded.hands,
                    "events": rollups.c.events + up.excluded.events,
                },
            ).returning(rollups.c.start)
            self._ingest_stmts = (ins, touch, add, roll)
        return self._ingest_stmts

    def _ingest_group(self, conn: sa.Connection, items: list[tuple[str, list[Event]]],
                      now: float) -> list[tuple[int, int]]:
        """Store several (dispenser, batch) in the open transaction with three statements in all."""
        ins, touch, add, roll = self._statements()
        # Sorted by dispenser then event_id (stable, so arrival order breaks ties): two PostgreSQL writers lock
        # the same rows in the same order and never deadlock, and the first of repeated event_ids is the one kept.
        rows = sorted(((d, e, idx) for idx, (d, batch) in enumerate(items) for e in batch),
                      key=lambda r: (r[0], r[1].event_id or "", r[2]))
        new = conn.execute(ins, [
            {"dispenser_id": d, "event_id": e.event_id, "ts": e.ts, "received_at": now, "gel_ul": e.gel_ul,
             "hands": e.hands} for d, e, _ in rows
        ]).all() if rows else []
        inserted = {(d, eid) for d, eid, *_ in new if eid is not None}
        accepted = [0] * len(items)
        for d, e, idx in rows:
            if e.event_id is None:
                accepted[idx] += 1
            elif (d, e.event_id) in inserted:
                inserted.discard((d, e.event_id))  # later copies of this id were the duplicates
                accepted[idx] += 1
        self._add_totals(conn, sorted({d for d, _ in items}), new, now, touch, add, roll)
        return [(n, len(batch) - n) for n, (_, batch) in zip(accepted, items, strict=True)]

    def _add_totals(self, conn: sa.Connection, ids: list[str], new: list, now: float,
                    touch: sa.Update, add: sa.Update, roll: Any) -> None:
        totals: dict[str, list[float]] = {}
        # Profiled (batches of 100): three bucket_start calls per event (a datetime for the day) were ~20% of an
        # ingest. Events are summed per minute first; hours and days are sums of minutes (minute-aligned
        # boundaries: UTC hours, and the local midnights of every zone since 2000, the earliest timestamp accepted).
        minutes: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        for d, _, ts, gel, hands in new:
            t = totals.get(d)
            if t is None:
                t = totals[d] = [0, 0, 0, ts]
            t[0] += gel
            t[1] += hands
            t[2] += 1
            if ts > t[3]:
                t[3] = ts
            acc = minutes[(d, int(ts // 60 * 60))]
            acc[0] += gel
            acc[1] += hands
            acc[2] += 1
        sums: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        days: dict[int, int] = {}
        for (d, minute), (g, h, n) in minutes.items():
            hour = minute // 3600 * 3600
            day = days.get(minute)
            if day is None:  # from the minute, not the hour: some zones' midnights are not hour-aligned
                day = days[minute] = self.bucket_start("day", minute)
            for key in (("minute", d, minute), ("hour", d, hour), ("day", d, day)):
                acc = sums[key]
                acc[0] += g
                acc[1] += h
                acc[2] += n
        quiet = [{"b_id": d, "b_now": now} for d in ids if d not in totals]
        if quiet:
            conn.execute(touch, quiet)
        if totals:
            conn.execute(add, [{"b_id": d, "b_now": now, "b_gel": g, "b_hands": h, "b_events": n, "b_newest": ts}
                               for d, (g, h, n, ts) in sorted(totals.items())])
        if not sums:
            return
        # Sorted keys: concurrent PostgreSQL writers lock rollup rows in the same order, never deadlock.
        conn.execute(roll, [
            {"size": size, "dispenser_id": d, "start": start, "gel_ul": g, "hands": h, "events": n}
            for (size, d, start), (g, h, n) in sorted(sums.items())
        ]).all()

    def dispenser_rows(self) -> list[sa.Row]:
        """Every dispenser row with its running totals; only the rows whose stamp moved are read in full.

        Profiled on PostgreSQL: reading (and pg8000 decoding) all 100 full rows was ~35% of a POST with a
        dashboard; three columns per row and the few changed rows cost a fraction of that.
        """
        with self.engine.connect() as conn:
            stamps = conn.execute(ROW_STAMPS).all()
            with self._rows_lock:
                cache = self._rows
                stale = [i for i, updated, n in stamps
                         if (hit := cache.get(i)) is None or hit.updated_at != updated or hit.events != n]
            if stale:
                if len(stale) > FEW:
                    fresh = conn.execute(ALL_DISPENSERS).all()
                else:
                    fresh = conn.execute(ROWS_OF, {"ids": stale}).all()
                with self._rows_lock:
                    self._rows = cache = {**cache, **{r.id: r for r in fresh}}
        # A row is never older than its stamp (read after it), so the next call does not re-read it for nothing.
        return [cache[i] for i, _, _ in stamps if i in cache]

    def recent_use(self, since: float) -> dict[str, int]:
        """Microlitres used per dispenser in hour buckets starting at or after `since`."""
        q = (
            sa.select(rollups.c.dispenser_id, _total(rollups.c.gel_ul))
            .where(rollups.c.size == "hour", rollups.c.start >= self.bucket_start("hour", since))
            .group_by(rollups.c.dispenser_id)
        )
        with self.engine.connect() as conn:
            return {d: int(g) for d, g in conn.execute(q)}

    def recent_use_for(self, since: float, events_by_dispenser: dict[str, int]) -> dict[str, int]:
        """recent_use(), re-reading only the dispensers whose event count moved since the last call.

        Profiled: summing every hour rollup of the last 24 h was a quarter of a POST on a full store. Rollups
        only change with new events, and a new event always moves its dispenser's `events` count, so a
        dispenser whose count and hour window are unchanged has an unchanged sum. Pass the counts read
        BEFORE calling this: a write in between then only makes the next call re-read.
        """
        window = self.bucket_start("hour", since)
        with self._recent_lock:
            if self._recent_window != window:
                self._recent_window, self._recent = window, {}
            cache = self._recent
            stale = [d for d, n in events_by_dispenser.items() if d not in cache or cache[d][0] != n]
            if stale:
                if len(stale) > FEW:
                    found = self.recent_use(since)
                else:
                    with self.engine.connect() as conn:
                        found = {d: int(g) for d, g in conn.execute(RECENT_OF, {"ids": stale, "window": window})}
                for d in stale:
                    cache[d] = (events_by_dispenser[d], found.get(d))
            return {d: cache[d][1] for d in events_by_dispenser if cache[d][1] is not None}

    def history(self, size: str, start: float, end: float, dispenser_id: str | None = None) -> list[sa.Row]:
        """Totals per bucket in [start, end), all dispensers or one, summed in SQL from the rollups."""
        q = (
            sa.select(
                rollups.c.start,
                _total(rollups.c.gel_ul).label("gel_ul"),
                _total(rollups.c.hands).label("hands"),
                _total(rollups.c.events).label("events"),
            )
            .where(rollups.c.size == size, rollups.c.start >= start, rollups.c.start < end)
            .group_by(rollups.c.start)
            .order_by(rollups.c.start)
        )
        if dispenser_id is not None:
            q = q.where(rollups.c.dispenser_id == dispenser_id)
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def refill(self, dispenser_id: str, by: str, now: float | None = None) -> None:
        """Record a full reservoir: the level restarts from capacity; usage totals are untouched."""
        now = time.time() if now is None else now
        with self.writer() as conn:
            row = conn.execute(
                sa.select(dispensers.c.gel_ul, dispensers.c.refill_gel_ul).where(dispensers.c.id == dispenser_id)
            ).one()
            conn.execute(sa.insert(refills).values(
                dispenser_id=dispenser_id, at=now, gel_ul_before=row.gel_ul - row.refill_gel_ul, by=by
            ))
            conn.execute(sa.update(dispensers).where(dispensers.c.id == dispenser_id).values(
                refill_gel_ul=row.gel_ul, refilled_at=now, last_seen=now, updated_at=now
            ))

    def heartbeat(self, dispenser_id: str, backlog: int | None, version: str | None, missed: int | None,
                  now: float | None = None) -> None:
        """Note that a dispenser is alive, with its spool backlog, version and missed-presence counter."""
        now = time.time() if now is None else now
        values = {"last_seen": now, "backlog": backlog, "version": version, "updated_at": now}
        if missed is not None:
            # An absolute counter kept by the dispenser: a retried heartbeat cannot count twice.
            values["missed"] = missed
        with self.writer() as conn:
            conn.execute(sa.update(dispensers).where(dispensers.c.id == dispenser_id).values(**values))

    def bucket_starts(self, size: str, start: float, end: float) -> list[int]:
        """Every bucket start from the one holding `start` up to `end` (local days follow DST)."""
        step = {"minute": 60, "hour": 3600, "day": 26 * 3600}[size]
        starts, t = [], self.bucket_start(size, start)
        while t < end:
            starts.append(t)
            t = self.bucket_start(size, t + step)
        return starts

    def export_events(self, start: float, end: float, dispenser_id: str | None = None) -> Iterator[sa.Row]:
        """Stream the events with a dose time in [start, end), oldest first, without loading them all."""
        q = sa.select(events).where(events.c.ts >= start, events.c.ts < end).order_by(events.c.ts, events.c.id)
        if dispenser_id is not None:
            q = q.where(events.c.dispenser_id == dispenser_id)
        with self.engine.connect() as conn:
            yield from conn.execution_options(stream_results=True, yield_per=1000).execute(q)

    def export_buckets(self, size: str, start: float, end: float,
                       dispenser_id: str | None = None) -> list[sa.Row]:
        """Totals per bucket and dispenser in [start, end), from the rollups."""
        q = (
            sa.select(rollups)
            .where(rollups.c.size == size, rollups.c.start >= self.bucket_start(size, start), rollups.c.start < end)
            .order_by(rollups.c.start, rollups.c.dispenser_id)
        )
        if dispenser_id is not None:
            q = q.where(rollups.c.dispenser_id == dispenser_id)
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def refill_history(self, dispenser_id: str | None = None, limit: int = 100) -> list[sa.Row]:
        """The latest refills, newest first."""
        q = sa.select(refills).order_by(refills.c.at.desc()).limit(limit)
        if dispenser_id is not None:
            q = q.where(refills.c.dispenser_id == dispenser_id)
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def data_version(self) -> Hashable:
        """A value that changes whenever any connection or process changes the figures' data."""
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not path or path == ":memory:" or path.startswith("file:"):
            # PostgreSQL: every write to a dispenser row moves its updated_at, an ingest its events too.
            with self.engine.connect() as conn:
                return tuple(conn.execute(CHANGES).one())
        with self._version_lock:
            if self._version_conn is None:
                # Its own connection: PRAGMA data_version only moves for commits made by *other* connections.
                self._version_conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            return self._version_conn.execute("PRAGMA data_version").fetchone()[0]

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

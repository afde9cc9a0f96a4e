"""Writes: the group commit of ingests, refills, heartbeats and the declared dispensers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa

from app.config import DispenserDecl
from app.store.contact import contacts, record_contact, record_outages
from app.store.database import Database
from app.store.schema import dispensers, events, refills, rollups
from app.store.sequence import Change, next_seq
from app.store.sums import DispenserSums, rollup_sums, sum_new_events


@dataclass(frozen=True)
class Event:
    """One validated use: `gel_ul` microlitres, `hands` hands, dose time `ts` (epoch seconds), door `entries`."""

    gel_ul: int
    hands: int
    ts: float
    event_id: str | None = None
    entries: int = 0


class Ingested(NamedTuple):
    """What ingest_shared() did: counts, the totals as committed, and the number of its group commit."""

    accepted: int
    duplicates: int
    gel_used: float
    hands_detected: int
    commit: int
    seq: int = 0  # the change sequence number of the transaction that held the batch
    entries: int = 0  # door passages of every dispenser row, as committed


class IngestStatements(NamedTuple):
    """The ingest's statements, built once per store and executed with many parameter sets."""

    insert_events: Any  # new events only, returning the rows actually inserted
    touch: sa.Update  # last_seen of a dispenser whose batch held only duplicates
    add: sa.Update  # running totals and newest dose time
    roll: Any  # rollup upsert

    @classmethod
    def build(cls, db: Database) -> IngestStatements:
        """Build the statements for `db`'s dialect."""
        ins = db.insert(events).on_conflict_do_nothing(
            index_elements=[events.c.dispenser_id, events.c.event_id]
        ).returning(events.c.dispenser_id, events.c.event_id, events.c.ts, events.c.gel_ul, events.c.hands,
                    events.c.entries, events.c.test)
        last, newest = dispensers.c.last_event_at, sa.bindparam("b_newest", type_=sa.Double)
        now = sa.bindparam("b_now", type_=sa.Double)
        touch = sa.update(dispensers).where(dispensers.c.id == sa.bindparam("b_id")).values(
            last_seen=now, updated_at=now, seq=sa.bindparam("b_seq", type_=sa.BigInteger))
        add = touch.values(
            gel_ul=dispensers.c.gel_ul + sa.bindparam("b_gel", type_=sa.BigInteger),
            hands=dispensers.c.hands + sa.bindparam("b_hands", type_=sa.BigInteger),
            events=dispensers.c.events + sa.bindparam("b_events", type_=sa.BigInteger),
            entries=dispensers.c.entries + sa.bindparam("b_entries", type_=sa.BigInteger),
            test_events=dispensers.c.test_events + sa.bindparam("b_test", type_=sa.BigInteger),
            last_event_at=sa.case((last.is_(None) | (last < newest), newest), else_=last),
        )
        up = db.insert(rollups)
        # RETURNING makes insertmanyvalues send one multi-row statement for all the parameter sets.
        roll = up.on_conflict_do_update(
            index_elements=[rollups.c.size, rollups.c.dispenser_id, rollups.c.start],
            set_={
                "gel_ul": rollups.c.gel_ul + up.excluded.gel_ul,
                "hands": rollups.c.hands + up.excluded.hands,
                "events": rollups.c.events + up.excluded.events,
                "entries": rollups.c.entries + up.excluded.entries,
            },
        ).returning(rollups.c.start)
        return cls(ins, touch, add, roll)


@dataclass(eq=False)
class Pending:
    """One caller's batch waiting in a group commit, and what became of it."""

    dispenser_id: str
    batch: list[Event]
    result: Ingested | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Ingests of one store: alone, or shared by concurrent callers in one transaction (one fsync for all)."""

    def __init__(self, db: Database):
        self.db = db
        self.statements = IngestStatements.build(db)
        self.waiting: list[Pending] = []  # ingest_shared() callers waiting for the next commit
        self.waiting_lock = threading.Lock()
        self.commit_lock = threading.Lock()
        self.commits = 0  # group commits made by ingest_shared() in this process

    def ingest(self, dispenser_id: str, batch: list[Event], now: float) -> tuple[int, int]:
        """Store a batch all-or-nothing in its own transaction; return (accepted, duplicates)."""
        with self.db.writer() as conn:
            return self.store_batches(conn, [(dispenser_id, batch)], now)[0][0]

    def ingest_shared(self, dispenser_id: str, batch: list[Event]) -> Ingested:
        """Like ingest(), but in one transaction with the batches of concurrent callers.

        The totals of all dispensers are read in the same transaction, so the answer needs no read of its own;
        `commit` numbers the groups this store committed, in order. Each caller returns only once the
        transaction holding its batch has committed; if it fails, every caller in it gets the exception, as
        each would have alone. Batches keep their arrival order, so a repeated event_id counts for the first
        request that carried it.
        """
        mine = Pending(dispenser_id, batch)
        with self.waiting_lock:
            self.waiting.append(mine)
        time.sleep(0)  # a switch: requests already read (other greenthreads or threads) join this group
        with self.commit_lock:
            if not mine.done:
                with self.waiting_lock:
                    group, self.waiting = self.waiting, []
                self._commit(group)
        if mine.error is not None:
            raise mine.error
        return mine.result  # set by the commit that held it

    def _commit(self, group: list[Pending]) -> None:
        """Commit a whole group, then tell each of its callers what became of its batch."""
        try:
            with self.db.writer() as conn:
                results, change = self.store_batches(conn, [(p.dispenser_id, p.batch) for p in group], time.time())
            self.commits += 1
            for p, (accepted, duplicates) in zip(group, results, strict=True):
                p.result = Ingested(accepted, duplicates, change.gel_ul / 1000, change.hands, self.commits, change.seq,
                                    change.entries)
        except Exception as exc:
            for p in group:
                p.error = exc
        for p in group:
            p.done = True

    def store_batches(self, conn: sa.Connection, items: list[tuple[str, list[Event]]],
                      now: float) -> tuple[list[tuple[int, int]], Change]:
        """Store several (dispenser, batch) in the open transaction; (accepted, duplicates) per batch, and the seq."""
        st = self.statements
        # Sorted by dispenser then event_id (stable, so arrival order breaks ties): two PostgreSQL writers lock
        # the same rows in the same order and never deadlock, and the first of repeated event_ids is the one kept.
        rows = sorted(((d, e, idx) for idx, (d, batch) in enumerate(items) for e in batch),
                      key=lambda r: (r[0], r[1].event_id or "", r[2]))
        ids = sorted({d for d, _ in items})
        # The mode decides where the events count; last_seen, which silence this contact ends (an outage).
        found = contacts(conn, ids)
        testing = {d for d, r in found.items() if r.mode == "test"}
        record_outages(self.db, conn, {d: r.last_seen for d, r in found.items()}, now)
        new = conn.execute(st.insert_events, [
            {"dispenser_id": d, "event_id": e.event_id, "ts": e.ts, "received_at": now, "gel_ul": e.gel_ul,
             "hands": e.hands, "entries": e.entries, "test": d in testing} for d, e, _ in rows
        ]).all() if rows else []
        inserted = {(d, eid) for d, eid, *_ in new if eid is not None}
        accepted = [0] * len(items)
        for d, e, idx in rows:
            if e.event_id is None:
                accepted[idx] += 1
            elif (d, e.event_id) in inserted:
                inserted.discard((d, e.event_id))  # later copies of this id were the duplicates
                accepted[idx] += 1
        per_dispenser, per_minute = sum_new_events(new)
        live = per_dispenser.values()
        change = next_seq(conn, sum(t.gel_ul for t in live), sum(t.hands for t in live), sum(t.entries for t in live))
        write_totals(conn, st, ids, per_dispenser, now, change.seq)
        sums = rollup_sums(per_minute, lambda minute: self.db.bucket_start("day", minute))
        if sums:
            # Sorted keys: concurrent PostgreSQL writers lock rollup rows in the same order, never deadlock.
            conn.execute(st.roll, [
                {"size": size, "dispenser_id": d, "start": start, "gel_ul": g, "hands": h, "events": n, "entries": e}
                for (size, d, start), (g, h, n, e) in sorted(sums.items())
            ]).all()
        return [(n, len(batch) - n) for n, (_, batch) in zip(accepted, items, strict=True)], change


def write_totals(conn: sa.Connection, st: IngestStatements, ids: list[str], per_dispenser: dict[str, DispenserSums],
                 now: float, seq: int) -> None:
    """Move the running totals of the dispensers with new events; only last_seen for the others."""
    quiet = [{"b_id": d, "b_now": now, "b_seq": seq} for d in ids if d not in per_dispenser]
    if quiet:
        conn.execute(st.touch, quiet)
    if per_dispenser:
        conn.execute(st.add, [{"b_id": d, "b_now": now, "b_gel": t.gel_ul, "b_hands": t.hands, "b_events": t.events,
                               "b_newest": t.newest, "b_entries": t.entries, "b_test": t.test_events, "b_seq": seq}
                              for d, t in sorted(per_dispenser.items())])


def sync_dispensers(db: Database, decls: Iterable[DispenserDecl]) -> None:
    """Create or rename the declared dispensers; their totals are kept, unchanged rows are not written."""
    now = time.time()
    stmt = db.insert(dispensers)
    stmt = stmt.on_conflict_do_update(
        index_elements=[dispensers.c.id],
        # updated_at and seq too, so that other processes and the dashboards notice a renamed dispenser.
        set_={"name": stmt.excluded.name, "capacity_ml": stmt.excluded.capacity_ml,
              "updated_at": stmt.excluded.updated_at, "seq": stmt.excluded.seq},
        where=(dispensers.c.name != stmt.excluded.name) | (dispensers.c.capacity_ml != stmt.excluded.capacity_ml),
    )
    rows = [{"id": d.id, "name": d.name, "capacity_ml": d.capacity_ml} for d in decls]
    if not rows:
        return
    with db.writer() as conn:
        seq = next_seq(conn).seq
        # The sums start at their column default, 0.
        conn.execute(stmt, [{**r, "updated_at": now, "seq": seq} for r in rows])


def refill(db: Database, dispenser_id: str, by: str, now: float) -> None:
    """Record a full reservoir: the level restarts from capacity; usage totals are untouched."""
    with db.writer() as conn:
        record_contact(db, conn, dispenser_id, now)
        row = conn.execute(
            sa.select(dispensers.c.gel_ul, dispensers.c.refill_gel_ul).where(dispensers.c.id == dispenser_id)
        ).one()
        conn.execute(sa.insert(refills).values(
            dispenser_id=dispenser_id, at=now, gel_ul_before=row.gel_ul - row.refill_gel_ul, by=by
        ))
        conn.execute(sa.update(dispensers).where(dispensers.c.id == dispenser_id).values(
            refill_gel_ul=row.gel_ul, refilled_at=now, last_seen=now, updated_at=now, seq=next_seq(conn).seq
        ))


def heartbeat(db: Database, dispenser_id: str, backlog: int | None, version: str | None, missed: int | None,
              now: float, stuck: bool) -> None:
    """Note that a dispenser is alive, with its spool backlog, version, missed-presence counter and stuck sensor."""
    values = {"last_seen": now, "backlog": backlog, "version": version, "updated_at": now, "stuck": stuck}
    if missed is not None:
        # An absolute counter kept by the dispenser: a retried heartbeat cannot count twice.
        values["missed"] = missed
    with db.writer() as conn:
        record_contact(db, conn, dispenser_id, now)
        values["seq"] = next_seq(conn).seq
        conn.execute(sa.update(dispensers).where(dispensers.c.id == dispenser_id).values(**values))


def touch(db: Database, ids: list[str]) -> int:
    """Stamp these dispensers with a new change number and nothing else (their figures moved with time)."""
    with db.writer() as conn:
        seq = next_seq(conn).seq
        conn.execute(sa.update(dispensers).where(dispensers.c.id.in_(sorted(ids))).values(seq=seq))
    return seq

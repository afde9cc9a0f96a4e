"""Reads and writes of the compliance figures: the census, daily sums from the rollups, contacts and refills."""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa

from app.store.database import Database, total
from app.store.schema import census, dispensers, events, refills, rollups


def set_census(db: Database, group_id: str, days: Iterable[tuple[str, int]], by: str,
               now: float | None = None) -> int:
    """Set a group's patients for each (local date, patients) given, all in one transaction; return how many."""
    rows = [{"group_id": group_id, "day": day, "patients": patients, "updated_at": time.time() if now is None else now,
             "by": by} for day, patients in days]
    if not rows:
        return 0
    stmt = db.insert(census)
    stmt = stmt.on_conflict_do_update(
        index_elements=[census.c.group_id, census.c.day],
        set_={"patients": stmt.excluded.patients, "updated_at": stmt.excluded.updated_at, "by": stmt.excluded.by})
    with db.writer() as conn:
        conn.execute(stmt, sorted(rows, key=lambda r: r["day"]))  # one lock order for concurrent imports
    return len(rows)


def census_between(db: Database, group_ids: list[str] | None, first: str, last: str) -> list[sa.Row]:
    """The census rows (group_id, day, patients, by, updated_at) of these groups (all if None), `first` to `last`."""
    q = (sa.select(census.c.group_id, census.c.day, census.c.patients, census.c.by, census.c.updated_at)
         .where(census.c.day >= first, census.c.day <= last).order_by(census.c.day, census.c.group_id))
    if group_ids is not None:
        q = q.where(census.c.group_id.in_(group_ids))
    with db.engine.connect() as conn:
        return conn.execute(q).all()


def _sums(db: Database, key: sa.Column, ids: list[str] | None, start: int, end: int) -> dict:
    """(gel_ul, hands, entries) per `key` value over the day rollups starting in [start, end)."""
    q = (sa.select(key, total(rollups.c.gel_ul), total(rollups.c.hands), total(rollups.c.entries))
         .where(rollups.c.size == "day", rollups.c.start >= start, rollups.c.start < end).group_by(key))
    if ids is not None:
        q = q.where(rollups.c.dispenser_id.in_(ids))
    with db.engine.connect() as conn:
        return {k: (int(g), int(h), int(e)) for k, g, h, e in conn.execute(q)}


def day_sums(db: Database, ids: list[str] | None, start: int, end: int) -> dict[int, tuple[int, int, int]]:
    """(gel_ul, hands, entries) per local day start in [start, end), summed over these dispensers (all if None)."""
    return _sums(db, rollups.c.start, ids, start, end)


def dispenser_sums(db: Database, ids: list[str] | None, start: int, end: int) -> dict[str, tuple[int, int, int]]:
    """(gel_ul, hands, entries) per dispenser over the local days starting in [start, end)."""
    return _sums(db, rollups.c.dispenser_id, ids, start, end)


def first_day(db: Database, ids: list[str] | None) -> int | None:
    """The start of the earliest local day on which these dispensers (all if None) counted a dose or an entry."""
    q = sa.select(sa.func.min(rollups.c.start)).where(rollups.c.size == "day")
    if ids is not None:
        q = q.where(rollups.c.dispenser_id.in_(ids))
    with db.engine.connect() as conn:
        found = conn.execute(q).scalar()
    return None if found is None else int(found)


def dispenser_states(db: Database, ids: list[str] | None) -> list[sa.Row]:
    """These dispensers' rows (all if None): last contact, mode, level inputs."""
    q = sa.select(dispensers.c.id, dispensers.c.name, dispensers.c.last_seen, dispensers.c.mode,
                  dispensers.c.capacity_ml, dispensers.c.gel_ul, dispensers.c.refill_gel_ul)
    if ids is not None:
        q = q.where(dispensers.c.id.in_(ids))
    with db.engine.connect() as conn:
        return conn.execute(q).all()


def refills_between(db: Database, ids: list[str] | None, start: float, end: float) -> list[sa.Row]:
    """The refills of these dispensers (all if None) in [start, end)."""
    q = sa.select(refills.c.dispenser_id, refills.c.at, refills.c.gel_ul_before).where(
        refills.c.at >= start, refills.c.at < end)
    if ids is not None:
        q = q.where(refills.c.dispenser_id.in_(ids))
    with db.engine.connect() as conn:
        return conn.execute(q).all()


LATE_S = 3600  # a dose recorded more than an hour after it was given arrived late (a spool delivered after an outage)


def late_arrivals(db: Database, ids: list[str] | None, start: float, end: float) -> tuple[int, int, float | None]:
    """Of the doses given in [start, end): how many arrived late, how many after `end`, and the last such arrival."""
    after = events.c.received_at >= end
    q = sa.select(
        sa.func.coalesce(sa.func.sum(sa.case((events.c.received_at - events.c.ts > LATE_S, 1), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(sa.case((after, 1), else_=0)), 0),
        sa.func.max(sa.case((after, events.c.received_at), else_=None)),
    ).where(events.c.ts >= start, events.c.ts < end, events.c.test.is_(False))
    if ids is not None:
        q = q.where(events.c.dispenser_id.in_(ids))
    with db.engine.connect() as conn:
        late, after_end, last = conn.execute(q).one()
    return int(late), int(after_end), last

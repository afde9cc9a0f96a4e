"""Reads: history, exports, refills and the recent use, summed in SQL from the rollups."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import sqlalchemy as sa

from app.store.database import Database, total
from app.store.schema import events, refills, rollups
from app.store.sums import TEST_PREFIX

EXPORT_PAGE = 1000  # events per read of an export: small enough to be quick, large enough to cost little


def recent_use(db: Database, since: float) -> dict[str, int]:
    """Microlitres used per dispenser in hour buckets starting at or after `since`."""
    q = (
        sa.select(rollups.c.dispenser_id, total(rollups.c.gel_ul))
        .where(rollups.c.size == "hour", rollups.c.start >= db.bucket_start("hour", since))
        .group_by(rollups.c.dispenser_id)
    )
    with db.engine.connect() as conn:
        return {d: int(g) for d, g in conn.execute(q)}


def among(q: sa.Select, column: sa.Column, ids: Collection[str] | None) -> sa.Select:
    """`q` narrowed to the rows whose `column` is one of `ids` (a dispenser, a group's); every row if None."""
    return q if ids is None else q.where(column.in_(ids))


def history(db: Database, size: str, start: float, end: float,
            dispenser_ids: Collection[str] | None = None) -> list[sa.Row]:
    """Totals per bucket in [start, end), over every dispenser or those given, summed in SQL from the rollups."""
    q = (
        sa.select(
            rollups.c.start,
            total(rollups.c.gel_ul).label("gel_ul"),
            total(rollups.c.hands).label("hands"),
            total(rollups.c.events).label("events"),
        )
        .where(rollups.c.size == size, rollups.c.start >= start, rollups.c.start < end)
        .group_by(rollups.c.start)
        .order_by(rollups.c.start)
    )
    with db.engine.connect() as conn:
        return conn.execute(among(q, rollups.c.dispenser_id, dispenser_ids)).all()


def export_events(db: Database, start: float, end: float, dispenser_ids: Collection[str] | None = None,
                  page: int = EXPORT_PAGE, include_test: bool = False) -> Iterator[sa.Row]:
    """The events (of every dispenser or those given) with a dose time in [start, end), oldest first.

    Read one page at a time by (ts, id); test-mode events (commissioning) only when `include_test`.
    """
    # No connection is held between pages: a client that reads slowly (or never) holds no pooled connection
    # and no read snapshot, so the pool stays free and SQLite can checkpoint its WAL meanwhile.
    after: tuple[float, int] | None = None
    while True:
        q = among(sa.select(events).where(events.c.ts >= start, events.c.ts < end), events.c.dispenser_id,
                  dispenser_ids)
        if not include_test:
            q = q.where(events.c.test == sa.false())
        if after is not None:  # ts >= on its own keeps the index range narrow; the OR breaks ties on ts
            q = q.where(events.c.ts >= after[0],
                        sa.or_(events.c.ts > after[0], sa.and_(events.c.ts == after[0], events.c.id > after[1])))
        with db.engine.connect() as conn:
            rows = conn.execute(q.order_by(events.c.ts, events.c.id).limit(page)).all()
        yield from rows
        if len(rows) < page:
            return
        after = (rows[-1].ts, rows[-1].id)


def export_buckets(db: Database, size: str, start: float, end: float,
                   dispenser_ids: Collection[str] | None = None, include_test: bool = False) -> list[sa.Row]:
    """Totals per bucket and dispenser (every one or those given) in [start, end), from the rollups.

    With `include_test`, the test-mode ones too, as rows of their own whose size starts with TEST_PREFIX.
    """
    sizes = [size, TEST_PREFIX + size] if include_test else [size]
    q = (
        sa.select(rollups)
        .where(rollups.c.size.in_(sizes), rollups.c.start >= db.bucket_start(size, start), rollups.c.start < end)
        .order_by(rollups.c.start, rollups.c.dispenser_id, rollups.c.size)
    )
    with db.engine.connect() as conn:
        return conn.execute(among(q, rollups.c.dispenser_id, dispenser_ids)).all()


def refill_history(db: Database, dispenser_id: str | None = None, limit: int = 100) -> list[sa.Row]:
    """The latest refills, newest first."""
    q = sa.select(refills).order_by(refills.c.at.desc()).limit(limit)
    if dispenser_id is not None:
        q = q.where(refills.c.dispenser_id == dispenser_id)
    with db.engine.connect() as conn:
        return conn.execute(q).all()

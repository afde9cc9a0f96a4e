"""Reads: history, exports, refills and the recent use, summed in SQL from the rollups."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from app.schema import events, refills, rollups
from app.store.database import Database, total


def recent_use(db: Database, since: float) -> dict[str, int]:
    """Microlitres used per dispenser in hour buckets starting at or after `since`."""
    q = (
        sa.select(rollups.c.dispenser_id, total(rollups.c.gel_ul))
        .where(rollups.c.size == "hour", rollups.c.start >= db.bucket_start("hour", since))
        .group_by(rollups.c.dispenser_id)
    )
    with db.engine.connect() as conn:
        return {d: int(g) for d, g in conn.execute(q)}


def history(db: Database, size: str, start: float, end: float, dispenser_id: str | None = None) -> list[sa.Row]:
    """Totals per bucket in [start, end), all dispensers or one, summed in SQL from the rollups."""
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
    if dispenser_id is not None:
        q = q.where(rollups.c.dispenser_id == dispenser_id)
    with db.engine.connect() as conn:
        return conn.execute(q).all()


def export_events(db: Database, start: float, end: float, dispenser_id: str | None = None) -> Iterator[sa.Row]:
    """Stream the events with a dose time in [start, end), oldest first, without loading them all."""
    q = sa.select(events).where(events.c.ts >= start, events.c.ts < end).order_by(events.c.ts, events.c.id)
    if dispenser_id is not None:
        q = q.where(events.c.dispenser_id == dispenser_id)
    with db.engine.connect() as conn:
        yield from conn.execution_options(stream_results=True, yield_per=1000).execute(q)


def export_buckets(db: Database, size: str, start: float, end: float,
                   dispenser_id: str | None = None) -> list[sa.Row]:
    """Totals per bucket and dispenser in [start, end), from the rollups."""
    q = (
        sa.select(rollups)
        .where(rollups.c.size == size, rollups.c.start >= db.bucket_start(size, start), rollups.c.start < end)
        .order_by(rollups.c.start, rollups.c.dispenser_id)
    )
    if dispenser_id is not None:
        q = q.where(rollups.c.dispenser_id == dispenser_id)
    with db.engine.connect() as conn:
        return conn.execute(q).all()


def refill_history(db: Database, dispenser_id: str | None = None, limit: int = 100) -> list[sa.Row]:
    """The latest refills, newest first."""
    q = sa.select(refills).order_by(refills.c.at.desc()).limit(limit)
    if dispenser_id is not None:
        q = q.where(refills.c.dispenser_id == dispenser_id)
    with db.engine.connect() as conn:
        return conn.execute(q).all()

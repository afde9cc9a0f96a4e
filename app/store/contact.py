"""What a write learns from a dispenser's contact: its mode, and the silence (outage) that contact ends."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from app.store.database import Database
from app.store.schema import dispensers, outages
from app.store.sequence import next_seq

MODES = ("live", "test")
# Built once: the ingest runs it in every group commit, on the (few) dispensers of that commit.
CONTACTS = sa.select(dispensers.c.id, dispensers.c.mode, dispensers.c.last_seen).where(
    dispensers.c.id.in_(sa.bindparam("ids", expanding=True)))


def contacts(conn: sa.Connection, ids: list[str]) -> dict[str, Any]:
    """The mode and last_seen of these dispensers, read in the write transaction before it moves last_seen."""
    return {r.id: r for r in conn.execute(CONTACTS, {"ids": ids})} if ids else {}


def record_outages(db: Database, conn: sa.Connection, last_seen: dict[str, float | None], now: float) -> None:
    """Store the silence each contact ends: from last_seen + offline_after_s to now, when it is that long.

    Written in the transaction that moves last_seen, so a silence is recorded exactly when it ends; two processes
    ending the same one compute the same start, and the unique key keeps one.
    """
    limit = db.offline_after_s
    rows = [{"dispenser_id": d, "began": seen + limit, "ended": now}
            for d, seen in sorted(last_seen.items()) if seen is not None and now - seen > limit]
    if rows:
        conn.execute(db.insert(outages).on_conflict_do_nothing(
            index_elements=[outages.c.dispenser_id, outages.c.began]), rows)


def record_contact(db: Database, conn: sa.Connection, dispenser_id: str, now: float) -> None:
    """Before a write that sets last_seen = now outside the ingest (heartbeat, refill): record the outage it ends."""
    seen = conn.execute(sa.select(dispensers.c.last_seen).where(dispensers.c.id == dispenser_id)).scalar()
    record_outages(db, conn, {dispenser_id: seen}, now)


def set_mode(db: Database, dispenser_id: str, mode: str, now: float | None = None) -> int:
    """Put a dispenser in "test" (commissioning: its events are kept apart) or "live" mode; return the change seq."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    now = time.time() if now is None else now
    with db.writer() as conn:
        seq = next_seq(conn).seq
        conn.execute(sa.update(dispensers).where(dispensers.c.id == dispenser_id).values(
            mode=mode, updated_at=now, seq=seq))
    return seq


def outages_between(db: Database, ids: list[str] | None, start: float, end: float) -> list[sa.Row]:
    """The recorded outages of these dispensers (all if None) that overlap [start, end)."""
    q = sa.select(outages.c.dispenser_id, outages.c.began, outages.c.ended).where(
        outages.c.began < end, outages.c.ended > start)
    if ids is not None:
        q = q.where(outages.c.dispenser_id.in_(ids))
    with db.engine.connect() as conn:
        return conn.execute(q).all()

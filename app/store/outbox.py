"""The alerts told and the notifications to send: an outbox kept until each message is delivered or given up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from app.store.database import Database
from app.store.schema import alert_states, outbox

OPEN = sa.and_(outbox.c.sent_at.is_(None), outbox.c.gave_up_at.is_(None))


def told_alerts(db: Database, ids: list[str] | None = None) -> dict[tuple[str, str], float]:
    """The alerts raised and not yet resolved (of these dispensers, if given), as (dispenser, kind) -> since."""
    q = sa.select(alert_states)
    if ids is not None:
        q = q.where(alert_states.c.dispenser_id.in_(ids))
    with db.engine.connect() as conn:
        return {(r.dispenser_id, r.kind): r.since for r in conn.execute(q)}


def record_alerts(db: Database, raised: Iterable[tuple[str, str, float]], resolved: Iterable[tuple[str, str]],
                  messages: list[dict[str, Any]], now: float) -> int:
    """In one transaction: the alerts raised and resolved, and their messages; return the messages kept.

    A resolution whose raise is still waiting out its settle time cancels it, for that target: an alert that
    flapped within `settle_s` tells nobody anything.
    """
    resolved = list(resolved)
    kept = 0
    with db.writer() as conn:
        for dispenser, kind in resolved:
            conn.execute(sa.delete(alert_states).where(alert_states.c.dispenser_id == dispenser,
                                                       alert_states.c.kind == kind))
        cancelled = set()
        for dispenser, kind in resolved:
            gone = conn.execute(sa.delete(outbox).where(
                OPEN, outbox.c.dispenser_id == dispenser, outbox.c.kind == kind, outbox.c.type == "alert.raised",
                outbox.c.attempts == 0, outbox.c.due_at > now).returning(outbox.c.target)).all()
            cancelled.update((target, dispenser, kind) for (target,) in gone)
        rows = [{"attempts": 0, **m} for m in messages if m["type"] != "alert.resolved"
                or (m["target"], m.get("dispenser_id"), m.get("kind")) not in cancelled]
        for dispenser, kind, since in raised:
            conn.execute(db.insert(alert_states).values(dispenser_id=dispenser, kind=kind, since=since)
                         .on_conflict_do_nothing())
        if rows:
            conn.execute(db.insert(outbox).on_conflict_do_nothing(), rows)
            kept = len(rows)
    return kept


def enqueue(db: Database, messages: list[dict[str, Any]]) -> None:
    """Add messages not tied to an alert (a weekly report, a test): sent once each, by `msg_id`."""
    if messages:
        with db.writer() as conn:
            conn.execute(db.insert(outbox).on_conflict_do_nothing(), [{"attempts": 0, **m} for m in messages])


def open_messages(db: Database, target: str, limit: int) -> list[sa.Row]:
    """The oldest messages of `target` not yet delivered or given up, in the order they were written."""
    with db.engine.connect() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.target == target, OPEN)
                            .order_by(outbox.c.id).limit(limit)).all()


def mark_sent(db: Database, ids: list[int], now: float) -> None:
    """These messages were delivered."""
    with db.writer() as conn:
        conn.execute(sa.update(outbox).where(outbox.c.id.in_(ids)).values(sent_at=now, last_error=None,
                                                                            attempts=outbox.c.attempts + 1))


def mark_failed(db: Database, ids: list[int], error: str, retry_at: float | None, now: float) -> None:
    """A try failed: retried at `retry_at`, or given up (None)."""
    values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "last_error": error[:300]}
    values.update({"due_at": retry_at} if retry_at is not None else {"gave_up_at": now})
    with db.writer() as conn:
        conn.execute(sa.update(outbox).where(outbox.c.id.in_(ids)).values(**values))


def pending_counts(db: Database) -> dict[str, int]:
    """Messages waiting per target."""
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(outbox.c.target, sa.func.count()).where(OPEN).group_by(outbox.c.target))
                    .all())


def recent_messages(db: Database, limit: int = 100) -> list[sa.Row]:
    """The latest messages of every target, newest first."""
    with db.engine.connect() as conn:
        return conn.execute(sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)).all()


def failing_since(db: Database) -> dict[str, float]:
    """Per target, when its oldest message still open after a failed try was written."""
    with db.engine.connect() as conn:
        q = sa.select(outbox.c.target, sa.func.min(outbox.c.created_at)).where(OPEN, outbox.c.attempts > 0)
        return dict(conn.execute(q.group_by(outbox.c.target)).all())


def has_message(db: Database, target: str, msg_id: str) -> bool:
    """True when this message was written for this target already (sent or not)."""
    with db.engine.connect() as conn:
        return conn.execute(sa.select(outbox.c.id).where(outbox.c.target == target, outbox.c.msg_id == msg_id)
                            ).first() is not None

"""The audit trail: who changed what, when, from where, before and after. Appended to, never changed."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from app.store.database import Database
from app.store.schema import audit

LIMIT = 5000  # entries read at once: a year of a busy ward's changes


def audit_entry(who: str, role: str, action: str, target: str | None = None, group: str | None = None,
                detail: dict[str, Any] | None = None, address: str | None = None) -> dict[str, Any]:
    """One entry of the audit, stamped now, as append_audit() takes it."""
    return {"at": time.time(), "who": who, "role": role, "address": address, "action": action, "target": target,
            "group_id": group, "detail": detail or {}}


def append_audit(db: Database, entries: list[dict[str, Any]]) -> None:
    """Append entries: at, who, role, address, action, target, group_id, detail (a dict, stored as JSON)."""
    if entries:
        with db.writer() as conn:
            conn.execute(sa.insert(audit), [{**e, "detail": json.dumps(e.get("detail") or {}, ensure_ascii=False)}
                                            for e in entries])


def audit_entries(db: Database, start: float, end: float, groups: Collection[str] | None = None,
                  who: str | None = None, action: str | None = None, limit: int = LIMIT) -> list[dict[str, Any]]:
    """Entries of [start, end), newest first; only those of `groups` when given; by `who` and `action` if given."""
    q = sa.select(audit).where(audit.c.at >= start, audit.c.at < end)
    if groups is not None:
        q = q.where(audit.c.group_id.in_(list(groups)))
    if who:
        q = q.where(audit.c.who == who)
    if action:
        q = q.where(audit.c.action == action)
    with db.engine.connect() as conn:
        rows = conn.execute(q.order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)).all()
    return [{**r._asdict(), "detail": json.loads(r.detail)} for r in rows]

"""`GET /api/notifications`: each notification target's state and its latest deliveries, for the staff."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response

from app.extensions import get_config, get_store
from app.live.figures import iso
from app.store.outbox import failing_since, pending_counts, recent_messages
from app.web.auth import Caller, requires
from app.web.http import json_response

bp = Blueprint("notifications", __name__)
FAILING_AFTER_S = 15 * 60  # a target failing this long is shown as failing (and on the dashboard)


def status(row: object) -> str:
    """sent, given_up, retrying (a try failed) or waiting (settling, quiet hours, or behind an older one)."""
    if row.sent_at is not None:
        return "sent"
    if row.gave_up_at is not None:
        return "given_up"
    return "retrying" if row.attempts else "waiting"


@bp.get("/api/notifications")
@requires("admin", "maintenance")
def notifications(by: Caller) -> Response:
    """Targets (kind, pending, failing since) and the latest 100 messages; no URL or secret is shown."""
    store, cfg, now = get_store(), get_config(), time.time()
    pending, failing = pending_counts(store), failing_since(store)
    targets = [{"id": t.id, "kind": "webhook" if t.webhook else "apprise", "alerts": list(t.alerts),
                "groups": list(t.groups), "pending": pending.get(t.id, 0),
                "failing_since": iso(failing[t.id]) if t.id in failing else None,
                "failing": t.id in failing and now - failing[t.id] >= FAILING_AFTER_S} for t in cfg.targets()]
    deliveries = [{"id": r.msg_id, "target": r.target, "type": r.type, "dispenser": r.dispenser_id, "kind": r.kind,
                   "status": status(r), "attempts": r.attempts, "created_at": iso(r.created_at),
                   "next_try": iso(r.due_at) if r.sent_at is None and r.gave_up_at is None else None,
                   "sent_at": iso(r.sent_at) if r.sent_at else None, "last_error": r.last_error,
                   "data": {k: v for k, v in json.loads(r.body).items()
                            if not k.endswith("_ts") and k not in ("html", "csv")}}
                  for r in recent_messages(store)]
    return json_response({"targets": targets, "deliveries": deliveries})

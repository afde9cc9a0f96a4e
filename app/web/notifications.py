"""`GET /api/notifications`: each notification target's state and its latest deliveries, for the staff."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, current_app

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


NOTICES_FRESH_S = 10.0  # dashboards poll these every 30 s: one outbox read per 10 s at most, however many poll


@bp.get("/api/notices")
def notices() -> Response:
    """Server-level problems for every dashboard's "needs attention": storage refusing writes, failing targets."""
    cached = current_app.extensions.get("notices")
    now = time.time()
    if cached is None or now - cached[0] > NOTICES_FRESH_S:
        store, cfg = get_store(), get_config()
        found: list[dict] = []
        if store.write_health.reason is not None:
            found.append({"kind": "storage", "error": f"the database refuses writes: {store.write_health.reason}"})
        failing = failing_since(store) if cfg.targets() else {}
        found += [{"kind": "notify_failing", "target": target, "since": iso(since)}
                  for target, since in sorted(failing.items()) if now - since >= FAILING_AFTER_S]
        cached = current_app.extensions["notices"] = (now, found)
    resp = json_response({"notices": cached[1]})
    resp.headers["Cache-Control"] = "no-store"
    return resp

"""The audit trail over HTTP: what a person's change records, `GET /api/audit` (JSON or CSV), `GET /api/whoami`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, request

from app.domain.compliance import midnight
from app.domain.input import ApiError
from app.domain.sheets import csv_text
from app.extensions import get_config, get_store
from app.live.figures import iso
from app.store.auditlog import append_audit, audit_entries, audit_entry
from app.web.auth import Caller, requires
from app.web.dates import date_range
from app.web.http import client_address, json_response, known_group

bp = Blueprint("audit", __name__)
COLUMNS = ["at", "who", "role", "address", "action", "target", "group", "detail"]


def record(by: Caller, action: str, target: str | None, group: str | None, detail: dict[str, Any]) -> None:
    """Append what `by` just changed to the audit (a dispenser acting on itself is not a person: not recorded)."""
    if by.role == "dispenser":
        return
    append_audit(get_store(), [audit_entry(by.audit_name, by.role, action, target, group, detail, client_address())])


def readable_groups(by: Caller, group: str | None) -> list[str] | None:
    """The groups whose entries `by` may read (None: all), narrowed to `group` and its descendants if asked."""
    fleet = get_config().fleet
    wanted = fleet.subtrees[group] if group is not None else None
    if not by.groups:
        return wanted
    mine = {g for own in by.groups for g in fleet.subtrees[own]}
    if group is not None and group not in mine:
        raise ApiError(f"{by.name} may read the audit of {', '.join(by.groups)} only", status=403)
    return sorted(mine if wanted is None else mine & set(wanted))


@bp.get("/api/audit")
@bp.get("/api/audit.csv", endpoint="audit_csv")
@requires("admin", "hygiene")
def audit_trail(by: Caller) -> Response:
    """`from`, `to` (local dates), `group`, `who`, `action`: the changes, newest first; CSV at /api/audit.csv."""
    group = known_group(request.args.get("group") or None)
    first, last = date_range(31, 40_000)  # the whole 2000-2100 range: the audit is small, and limited
    store = get_store()
    start, end = midnight(first, store.tz), midnight(last + timedelta(days=1), store.tz)
    rows = audit_entries(store, start, end, readable_groups(by, group), request.args.get("who") or None,
                         request.args.get("action") or None)
    entries = [{"at": iso(r["at"]), "who": r["who"], "role": r["role"], "address": r["address"],
                "action": r["action"], "target": r["target"], "group": r["group_id"], "detail": r["detail"]}
               for r in rows]
    if request.path.endswith(".csv"):
        flat = [{**e, "detail": json_text(e["detail"])} for e in entries]
        return Response(csv_text(COLUMNS, flat), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="audit-{first}-{last}.csv"'})
    return json_response({"from": first.isoformat(), "to": last.isoformat(), "entries": entries})


def json_text(detail: dict[str, Any]) -> str:
    """A detail as one CSV cell."""
    return json.dumps(detail, ensure_ascii=False, sort_keys=True)


@bp.get("/api/whoami")
@requires("admin", "hygiene", "maintenance")
def whoami(by: Caller) -> Response:
    """Who this token is: the pages show "Signed in as <name> (role)"."""
    return json_response({"id": by.id, "name": by.name, "role": by.role, "groups": list(by.groups),
                          "shared": by.shared})

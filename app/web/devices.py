"""A dispenser's own calls beside its uses: heartbeats, and refills (by itself or by staff), with their list."""

from __future__ import annotations

import logging

from flask import Blueprint, Response

from app.domain.input import ApiError
from app.extensions import get_config, get_figures, get_refill_rate, get_store
from app.live.figures import iso
from app.live.pushes import push_write
from app.web.audit import record
from app.web.auth import Caller, requires
from app.web.http import json_body, json_response, limit_dispenser

log = logging.getLogger(__name__)
bp = Blueprint("devices", __name__)


@bp.post("/api/dispensers/<dispenser:dispenser_id>/refill")
@requires("dispenser:self", "admin", "maintenance")
def refill(dispenser_id: str, by: Caller) -> Response:
    """The reservoir was filled: its level restarts at capacity. Usage totals do not change."""
    wait = get_refill_rate().take(dispenser_id)
    if wait:
        raise ApiError(f"dispenser {dispenser_id!r} was refilled less than a minute ago: retry in {wait} s", 429,
                       retry_after=wait)
    before = get_figures().payload(dispenser_id)["dispensers"][0]
    get_store().refill(dispenser_id, by.who)
    log.info("refill dispenser=%s by=%s", dispenser_id, by)
    push_write()
    entry = get_figures().payload(dispenser_id)["dispensers"][0]
    record(by, "refill", dispenser_id, get_config().fleet.group_of.get(dispenser_id),
           {"before": {"level_pct": before["level_pct"]}, "after": {"level_pct": entry["level_pct"]}})
    return json_response({"message": "Recharge enregistrée", "dispenser": entry})


@bp.get("/api/dispensers/<dispenser:dispenser_id>/refills")
def refill_list(dispenser_id: str) -> Response:
    """The latest refills of a dispenser, newest first."""
    rows = get_store().refill_history(dispenser_id)
    return json_response({"refills": [{"at": iso(r.at), "by": r.by, "gel_used_before": r.gel_ul_before / 1000}
                                      for r in rows]})


MAX_HEARTBEAT_COUNT = 1_000_000_000  # a spool backlog or missed presences beyond this is no real dispenser's


def _optional_int(body: dict, key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 <= value <= MAX_HEARTBEAT_COUNT):
        raise ApiError(f"{key} must be an integer from 0 to {MAX_HEARTBEAT_COUNT}")
    return value


@bp.post("/api/dispensers/<dispenser:dispenser_id>/heartbeat")
@requires("dispenser:self")
def heartbeat(dispenser_id: str, by: Caller) -> Response:
    """A dispenser says it is alive, with its spool backlog, software version and missed presences."""
    limit_dispenser(dispenser_id)
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError("body must be a JSON object")
    version = body.get("version")
    if version is not None and (not isinstance(version, str) or len(version) > 40):
        raise ApiError("version must be a string of at most 40 characters")
    stuck = body.get("stuck", False)
    if not isinstance(stuck, bool):
        raise ApiError("stuck must be true or false")
    get_store().heartbeat(dispenser_id, _optional_int(body, "backlog"), version, _optional_int(body, "missed"),
                          stuck=stuck)
    log.debug("heartbeat dispenser=%s backlog=%s", dispenser_id, body.get("backlog"))
    push_write()  # back online, a new backlog: the dashboards get this dispenser's entry now
    return json_response({"status": "ok"})


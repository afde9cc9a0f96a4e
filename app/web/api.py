"""The original two routes (read the figures, add a use) and the health check."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from app.domain.ingest import parse_events
from app.domain.input import ApiError
from app.extensions import get_config, get_figures, get_store
from app.live.figures import Figures, Payload
from app.live.pushes import push_after
from app.metrics import get_metrics
from app.web.auth import Caller, requires
from app.web.http import (
    GZIP_MIN,
    accepts_gzip,
    gzip_if_accepted,
    json_response,
    known_dispenser,
    known_group,
    limit_dispenser,
    require_json,
)

CONFIRMATION = "Données mises à jour avec succès"
log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)
NO_CACHE = (("Cache-Control", "no-cache"),)
UNCHANGED_HEADERS = (*NO_CACHE, ("Vary", "Accept-Encoding"))


def cacheable(payload: Payload) -> Response:
    """A JSON response with a strong ETag (one per encoding), answered 304 when the client already has it."""
    text, etag = payload.encoded()
    packed = accepts_gzip() and len(text) >= GZIP_MIN
    tag = f"{etag}-gz" if packed else etag  # a strong ETag names the bytes sent: gzip has its own
    if request.method == "GET" and (request.if_none_match.contains_weak(etag)
                                    or request.if_none_match.contains_weak(f"{etag}-gz")):
        # The unchanged poll, answered without building (then discarding) the full response; its headers given
        # at once, as werkzeug's setters each search the header list.
        return Response(status=304, headers=(("ETag", f'"{tag}"'), *UNCHANGED_HEADERS))
    resp = Response(payload.gzipped() if packed else text, mimetype="application/json")
    if packed:
        resp.headers["Content-Encoding"] = "gzip"
    resp.set_etag(tag)
    resp.headers["Cache-Control"] = "no-cache"
    resp.vary.add("Accept-Encoding")
    return resp.make_conditional(request)


def since_arg(raw: str) -> int:
    """The `since` query value: a change sequence number."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:  # int() would read other scripts' digits
        raise ApiError("since must be a change sequence number (an integer >= 0), as `seq` in a payload")
    return int(raw)


def changes_since(figures: Figures, since: int, group: str | None) -> Response:
    """What changed after `since` (a delta), 304 when nothing did, the full payload if `since` is unknown here."""
    delta = figures.delta(since, group)
    if delta is None:
        if since > figures.view.seq:  # a number from another database (restored, replaced): start afresh
            return cacheable(figures.payload(group=group))
        return Response(status=304, headers=NO_CACHE)
    resp = Response(delta.encoded()[0], mimetype="application/json")
    resp.headers["Cache-Control"] = "no-cache"
    return gzip_if_accepted(resp)


@bp.get("/obtenir_donnees_utilisation")
def obtenir_donnees_utilisation() -> Response:
    """Totals and per-dispenser figures, narrowed by `?dispenser=ID` or `?group=ID`; `?since=SEQ`: what changed."""
    group = known_group(request.args.get("group"))
    if group is not None and request.args.get("dispenser"):
        raise ApiError("ask for a dispenser or a group, not both")
    since = request.args.get("since")
    if since is not None:
        return changes_since(get_figures(), since_arg(since), group)
    return cacheable(get_figures().payload(known_dispenser(request.args.get("dispenser")), group=group))


@bp.post("/mettre_a_jour_donnees")
@requires("dispenser")
def mettre_a_jour_donnees(by: Caller) -> Response:
    caller = by.id
    """Add a use (or a batch of uses) to the totals, then push the new figures to every dashboard."""
    require_json()
    batch = parse_events(request.get_data(cache=False), time.time(), request.headers.get("X-Dispenser-Clock"),
                         get_config().max_event_age_days)
    limit_dispenser(caller, len(batch))
    done = get_store().ingest_shared(caller, batch)  # group commit with concurrent POSTs
    metrics = get_metrics()
    metrics.ingested.labels(caller).inc(done.accepted)
    metrics.duplicates.labels(caller).inc(done.duplicates)
    log.info(
        "ingest dispenser=%s accepted=%d duplicates=%d gel_ml=%.3f hands=%d",
        caller, done.accepted, done.duplicates, sum(e.gel_ul for e in batch) / 1000, sum(e.hands for e in batch),
    )
    if log.isEnabledFor(logging.DEBUG):  # one line per event too, when asked (a batch holds up to 1000)
        for e in batch:
            log.debug("event dispenser=%s event_id=%s ts=%.3f gel_ml=%.3f hands=%d",
                      caller, e.event_id, e.ts, e.gel_ul / 1000, e.hands)
    push_after(done.seq)
    return json_response({
        "message": CONFIRMATION,
        "accepted": done.accepted,
        "duplicates": done.duplicates,
        "gel_used": done.gel_used,
        "hands_detected": done.hands_detected,
        "entries": done.entries,
    })


@bp.get("/healthz")
def healthz() -> Response:
    """200 when the database answers and takes writes, 503 with the reason otherwise."""
    refusing = get_store().write_health.reason
    if refusing is not None:
        return json_response({"status": "unavailable", "error": f"the database refuses writes: {refusing}"}, 503)
    if get_store().ping():
        return json_response({"status": "ok"})
    return json_response({"status": "unavailable", "error": "database does not answer"}, 503)

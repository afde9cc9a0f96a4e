"""The original two routes (read the figures, add a use) and the health check."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from app.figures import Payload
from app.http import (
    allow_cross_origin_reads,
    dispenser_required,
    json_response,
    known_dispenser,
    require_json,
)
from app.ingest import parse_events
from app.metrics import get_metrics
from app.realtime.pushes import push_after
from app.services import get_figures, get_store

CONFIRMATION = "Données mises à jour avec succès"
log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)
bp.after_request(allow_cross_origin_reads)


def cacheable(payload: Payload) -> Response:
    """A JSON response with a strong ETag, answered 304 when the client already has it."""
    text, etag = payload.encoded()
    if request.method == "GET" and request.if_none_match.contains_weak(etag):
        # The unchanged poll, answered without building (then discarding) the full response.
        resp = Response(status=304)
        resp.set_etag(etag)
        resp.headers["Cache-Control"] = "no-cache"
        return resp
    resp = Response(text, mimetype="application/json")
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "no-cache"
    return resp.make_conditional(request)


@bp.get("/obtenir_donnees_utilisation")
def obtenir_donnees_utilisation() -> Response:
    """Totals and per-dispenser figures; `?dispenser=ID` narrows them to one dispenser."""
    return cacheable(get_figures().payload(known_dispenser(request.args.get("dispenser"))))


@bp.post("/mettre_a_jour_donnees")
@dispenser_required
def mettre_a_jour_donnees(caller: str) -> Response:
    """Add a use (or a batch of uses) to the totals, then push the new figures to every dashboard."""
    require_json()
    batch = parse_events(request.get_data(cache=False), time.time(), request.headers.get("X-Dispenser-Clock"))
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
    push_after(done.commit)
    return json_response({
        "message": CONFIRMATION,
        "accepted": done.accepted,
        "duplicates": done.duplicates,
        "gel_used": done.gel_used,
        "hands_detected": done.hands_detected,
    })


@bp.get("/healthz")
def healthz() -> Response:
    """200 when the database answers, 503 otherwise."""
    if get_store().ping():
        return json_response({"status": "ok"})
    return json_response({"status": "unavailable", "error": "database does not answer"}, 503)

"""The seed's two routes and the health check."""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, abort, request

from app import pushes
from app.figures import encoded, usage_payload
from app.ingest import InvalidInput, parse_events
from app.metrics import get_metrics
from app.services import caller_dispenser, get_config, get_store

CONFIRMATION = "Données mises à jour avec succès"
log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)


def json_response(payload: dict, status: int = 200) -> Response:
    """A compact JSON response (faster than jsonify's pretty printing, same content)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, mimetype="application/json")


def cacheable(payload: dict) -> Response:
    """A JSON response with a strong ETag, answered 304 when the client already has it."""
    text, etag = encoded(payload)
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


def allow_origin(resp: Response) -> None:
    """Access-Control-Allow-Origin for the page asking: `*`, or its own origin when cors_origins lists it."""
    allowed = get_config().allowed_origin(request.headers.get("Origin"))
    if allowed is not None:
        resp.headers["Access-Control-Allow-Origin"] = allowed
    if allowed != "*":
        resp.vary.add("Origin")  # the answer depends on who asks: a cache must not hand it to another page


@bp.after_request
def allow_cross_origin_reads(resp: Response) -> Response:
    """Read-only routes may be fetched by pages elsewhere on the LAN; the POST needs a token anyway."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        allow_origin(resp)
        resp.headers["Access-Control-Allow-Headers"] = "If-None-Match"
        resp.headers["Access-Control-Expose-Headers"] = "ETag"
    return resp


@bp.get("/obtenir_donnees_utilisation")
def obtenir_donnees_utilisation() -> Response:
    """Totals and per-dispenser figures; `?dispenser=ID` narrows them to one dispenser."""
    dispenser = request.args.get("dispenser")
    if dispenser is not None and dispenser not in {d.id for d in get_config().dispensers}:
        abort(404, description=f"unknown dispenser {dispenser!r}")
    return cacheable(usage_payload(get_store(), get_config(), dispenser))


@bp.post("/mettre_a_jour_donnees")
def mettre_a_jour_donnees() -> Response:
    """Add a use (or a batch of uses) to the totals, then push the new figures to every dashboard."""
    dispenser = caller_dispenser()
    if not request.is_json:
        raise InvalidInput("Content-Type must be application/json", status=415)
    batch = parse_events(request.get_data(cache=False), time.time(), request.headers.get("X-Dispenser-Clock"))
    done = get_store().ingest_shared(dispenser, batch)  # group commit with concurrent POSTs
    metrics = get_metrics()
    metrics.ingested.labels(dispenser).inc(done.accepted)
    metrics.duplicates.labels(dispenser).inc(done.duplicates)
    log.info(
        "ingest dispenser=%s accepted=%d duplicates=%d gel_ml=%.3f hands=%d",
        dispenser, done.accepted, done.duplicates, sum(e.gel_ul for e in batch) / 1000, sum(e.hands for e in batch),
    )
    if log.isEnabledFor(logging.DEBUG):  # one line per event too, when asked (a batch holds up to 1000)
        for e in batch:
            log.debug("event dispenser=%s event_id=%s ts=%.3f gel_ml=%.3f hands=%d",
                      dispenser, e.event_id, e.ts, e.gel_ul / 1000, e.hands)
    pushes.push_after(done.commit)
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

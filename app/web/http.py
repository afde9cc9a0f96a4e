"""What every route shares: JSON answers, CORS, gzip, the security headers and the dispenser URL part."""

from __future__ import annotations

import gzip
import json
from typing import Any

from flask import Response, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from app.domain.input import ApiError, load_json
from app.extensions import get_config, get_dispenser_rate

MAX_BODY = 1024 * 1024  # the largest request body accepted: 1 MiB, a full batch with room to spare
MAX_BODY_TEXT = f"{MAX_BODY // (1024 * 1024)} MiB"
GZIP_MIN = 1024  # smaller answers gain too little from compression to be worth it
EXPORT_RETRY_S = 30  # when every export slot is taken: about the time a large export takes
# On every answer; a page sets its own Content-Security-Policy, everything else (JSON, CSV) runs nothing.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
}


SECURITY_PAIRS = tuple(SECURITY_HEADERS.items())
CORS_READ_HEADERS = (("Access-Control-Allow-Headers", "If-None-Match"), ("Access-Control-Expose-Headers", "ETag"))
SECURITY_NAMES = frozenset(name.lower() for name in SECURITY_HEADERS)


def security_headers(resp: Response) -> Response:
    """The usual protective headers, unless the view set its own."""
    # One pass over the few headers there are: werkzeug's setdefault raises and catches a KeyError per name.
    present = {name.lower() for name, _ in resp.headers}
    if present.isdisjoint(SECURITY_NAMES):
        resp.headers.extend(SECURITY_PAIRS)
    else:
        resp.headers.extend([(k, v) for k, v in SECURITY_PAIRS if k.lower() not in present])
    return resp


def limit_dispenser(dispenser_id: str, cost: int = 1) -> None:
    """Count `cost` units against the dispenser's rate; 429 with Retry-After once it is used up."""
    rate = get_dispenser_rate()
    if rate.rate > 0 and cost > rate.burst:  # it would never fit: say what does, rather than a wait that never ends
        raise ApiError(f"a batch of {cost} events is over this server's limit: at most {int(rate.burst)} per batch "
                       f"(dispenser_events_per_min)", 429, retry_after=60, max_batch=int(rate.burst))
    wait = rate.take(dispenser_id, cost)
    if wait:
        raise ApiError(f"too many events from dispenser {dispenser_id!r}: retry in {wait} s", 429, retry_after=wait)


def json_response(payload: dict, status: int = 200) -> Response:
    """A compact JSON response (faster than jsonify's pretty printing, same content)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, mimetype="application/json")


def require_json() -> None:
    """Refuse (415) a body that is not declared as JSON."""
    if not request.is_json:
        raise ApiError("Content-Type must be application/json", status=415)


def json_body() -> Any:
    """The request's body, declared as JSON (415 otherwise) and parsed strictly (400)."""
    require_json()
    return load_json(request.get_data(cache=False))


def allow_origin(resp: Response) -> Response:
    """Access-Control-Allow-Origin for the page asking: `*`, or its own origin when cors_origins lists it."""
    allowed = get_config().allowed_origin(request.headers.get("Origin"))
    if allowed is not None:
        resp.headers["Access-Control-Allow-Origin"] = allowed
    if allowed != "*":
        resp.vary.add("Origin")  # the answer depends on who asks: a cache must not hand it to another page
    return resp


# The routes a page elsewhere may read (every GET of the API, the poll, the health check); not the HTML pages,
# /static or /metrics (Prometheus is no browser).
CROSS_ORIGIN_READS = ("/api/", "/obtenir_donnees_utilisation", "/healthz")


def allow_cross_origin_reads(resp: Response) -> Response:
    """Read-only answers may be fetched by pages elsewhere on the LAN; writes need a token anyway. App-wide, so a
    new read route is covered without a line of its own."""
    if request.method in ("GET", "HEAD", "OPTIONS") and request.path.startswith(CROSS_ORIGIN_READS):
        allow_origin(resp)
        resp.headers.extend(CORS_READ_HEADERS)  # no view sets these: added, not searched for and replaced
    return resp


def known_dispenser(dispenser_id: str | None) -> str | None:
    """`dispenser_id` itself if declared (or None); 404 for any other."""
    if dispenser_id is not None and dispenser_id not in get_config().fleet.group_of:
        raise NotFound(description=f"unknown dispenser {dispenser_id!r}")
    return dispenser_id


def known_group(group_id: str | None) -> str | None:
    """`group_id` itself if declared (or None); 404 for any other."""
    if group_id is not None and group_id not in get_config().fleet.groups:
        raise NotFound(description=f"unknown group {group_id[:64]!r}")
    return group_id


def accepts_gzip() -> bool:
    """True when the client said it reads gzip-compressed answers."""
    header = request.headers.get("Accept-Encoding", "").lower()
    if ";" not in header:  # no q-values: every encoding named is accepted (a poll's usual header, parsed cheaply)
        names = {name.strip() for name in header.split(",")}
        return "gzip" in names or "*" in names
    return request.accept_encodings["gzip"] > 0


def gzip_if_accepted(resp: Response) -> Response:
    """Compress a 200 answer of at least GZIP_MIN bytes for a client that accepts gzip."""
    if resp.status_code != 200 or resp.direct_passthrough or "Content-Encoding" in resp.headers:
        return resp
    resp.vary.add("Accept-Encoding")
    if not accepts_gzip():
        return resp
    body = resp.get_data()
    if len(body) < GZIP_MIN:
        return resp
    resp.set_data(gzip.compress(body, compresslevel=6, mtime=0))
    resp.headers["Content-Encoding"] = "gzip"
    return resp


class DispenserConverter(BaseConverter):
    """`<dispenser:dispenser_id>` in a route: a declared dispenser id, else 404."""

    def to_python(self, value: str) -> str:
        """The id, checked against the config."""
        known_dispenser(value)
        return value


def client_address() -> str | None:
    """Where the request came from; through a proxy on this host, the hop it says it got it from."""
    address = request.remote_addr
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and address in ("127.0.0.1", "::1"):
        address = forwarded.split(",")[-1].strip()[:64]
    return address

"""Errors follow the client: JSON (`{"error": "..."}`) for the API, a page in the user's language for a page."""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from app.domain.input import ApiError
from app.extensions import get_translations
from app.store.health import WritesRefused
from app.web.http import MAX_BODY_TEXT, json_response
from app.web.views import html_page, pick_language

log = logging.getLogger(__name__)
STORAGE_RETRY_S = 60  # a full disk is not freed in a second: dispensers keep their spool and come back


def wants_page() -> bool:
    """True for a page route (the dashboard, round, compliance, report), or a browser asking for an unknown URL."""
    if request.path.startswith("/api/") or request.blueprint not in (None, "views"):
        return False
    if request.blueprint == "views":
        return True
    best = request.accept_mimetypes.best_match(("application/json", "text/html"))
    return best == "text/html" and request.accept_mimetypes[best] > request.accept_mimetypes["application/json"]


def error_page(status: int, detail: str) -> Response:
    """The HTML error page: what went wrong in the user's language, the detail, a link back to the dashboard."""
    lang = pick_language()
    strings = get_translations(lang)
    heading = strings.get(f"error_{status}", strings["error_other"])
    resp = html_page(render_template("error.html", t=strings, lang=lang, status=status, heading=heading,
                                     detail=detail))
    resp.status_code = status
    return resp


def register_error_handlers(app: Flask) -> None:
    """Install the JSON error handlers on `app`."""

    @app.errorhandler(ApiError)
    def refused(exc: ApiError) -> Response:
        if wants_page():
            return error_page(exc.status, str(exc))
        resp = json_response({"error": str(exc), **exc.extra}, exc.status)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        if exc.retry_after is not None:
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.errorhandler(WritesRefused)
    def storage_refused(exc: WritesRefused) -> Response:
        resp = json_response({"error": str(exc)}, 503)  # logged once per streak by the store, not per request
        resp.headers["Retry-After"] = str(STORAGE_RETRY_S)
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        messages = {413: f"request body is larger than {MAX_BODY_TEXT}"}
        message = messages.get(exc.code, exc.description)
        if wants_page():
            return error_page(exc.code or 500, message)
        resp = json_response({"error": message}, exc.code or 500)
        if exc.code == 405 and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        log.exception("unhandled error")
        return json_response({"error": "internal server error"}, 500)

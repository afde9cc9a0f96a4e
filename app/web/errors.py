"""Every error the server answers is JSON: `{"error": "..."}` with the right status."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from app.domain.input import ApiError
from app.store.health import WritesRefused
from app.web.http import MAX_BODY_TEXT, json_response

log = logging.getLogger(__name__)
STORAGE_RETRY_S = 60  # a full disk is not freed in a second: dispensers keep their spool and come back


def register_error_handlers(app: Flask) -> None:
    """Install the JSON error handlers on `app`."""

    @app.errorhandler(ApiError)
    def refused(exc: ApiError) -> Response:
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
        resp = json_response({"error": messages.get(exc.code, exc.description)}, exc.code or 500)
        if exc.code == 405 and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        log.exception("unhandled error")
        return json_response({"error": "internal server error"}, 500)

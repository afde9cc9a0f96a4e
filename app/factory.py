"""The application factory: the one module that imports the blueprints (and registers them)."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from app.config import ConfigError, ServerConfig, load_config
from app.config.tokens import insecure_reason
from app.limits import RateLimiter, Slots
from app.live import socketio
from app.live.figures import Figures
from app.live.guard import MAX_MESSAGE_BYTES, DashboardGuard
from app.live.packets import PayloadPacket
from app.live.pushes import init_pushes
from app.metrics import init_metrics
from app.store import Store
from app.web.api import bp as api_routes
from app.web.audit import bp as audit_routes
from app.web.census import bp as ward_routes
from app.web.compliance import bp as rate_routes
from app.web.devices import bp as device_routes
from app.web.errors import register_error_handlers
from app.web.history import bp as history_routes
from app.web.http import MAX_BODY, DispenserConverter, allow_cross_origin_reads, security_headers
from app.web.notifications import bp as notification_routes
from app.web.views import bp as dashboard_routes


def create_app(config: ServerConfig | str | Path | None = None, demo: bool | None = None) -> Flask:
    """Build the server from a ServerConfig or a config.toml path (default: $GEL_CONFIG or ./config.toml)."""
    if not isinstance(config, ServerConfig):
        config = load_config(config or os.environ.get("GEL_CONFIG", "config.toml"))
    # Under any WSGI server, not only `python -m app`: the example tokens are served only when asked for.
    reason = insecure_reason(config, demo=os.environ.get("GEL_DEMO") == "1" if demo is None else demo)
    if reason:
        raise ConfigError(reason)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.url_map.converters["dispenser"] = DispenserConverter
    store = Store(config.database, config.dispensers, config.timezone, config.offline_after_s)
    app.extensions["usage_config"] = config
    app.extensions["usage_store"] = store
    app.extensions["figures"] = Figures(store, config)
    app.extensions["dispenser_rate"] = RateLimiter(config.dispenser_events_per_min)
    app.extensions["refill_rate"] = RateLimiter(1)  # a reservoir is not refilled twice a minute
    app.extensions["export_slots"] = Slots(config.max_exports, config.export_deadline_s)

    for routes in (api_routes, history_routes, device_routes, dashboard_routes, ward_routes, rate_routes,
                   notification_routes, audit_routes):
        app.register_blueprint(routes)
    init_metrics(app)
    init_pushes(app)
    register_error_handlers(app)
    app.after_request(allow_cross_origin_reads)
    app.after_request(security_headers)
    socketio.init_app(
        app,
        async_mode=config.async_mode,
        message_queue=config.message_queue,
        cors_allowed_origins=config.cors_origins,
        serializer=PayloadPacket,
        max_http_buffer_size=MAX_MESSAGE_BYTES,  # what a client may send at once: a `join` needs 30 bytes
    )
    app.extensions["dashboard_guard"] = DashboardGuard(socketio.server.eio, config.max_dashboards,
                                                       config.max_dashboards_per_address)
    return app

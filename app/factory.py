"""The application factory: the one module that imports the blueprints (and registers them)."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from app.api import bp as api_routes
from app.config import ServerConfig, load_config
from app.errors import register_error_handlers
from app.figures import Figures
from app.http import MAX_BODY, DispenserConverter
from app.metrics import init_metrics
from app.ops import bp as ops_routes
from app.realtime import socketio
from app.realtime.packets import PayloadPacket
from app.realtime.pushes import init_pushes
from app.store import Store
from app.views import bp as dashboard_routes


def create_app(config: ServerConfig | str | Path | None = None) -> Flask:
    """Build the server from a ServerConfig or a config.toml path (default: $GEL_CONFIG or ./config.toml)."""
    if not isinstance(config, ServerConfig):
        config = load_config(config or os.environ.get("GEL_CONFIG", "config.toml"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["JSON_AS_ASCII"] = False
    app.url_map.converters["dispenser"] = DispenserConverter
    store = Store(config.database, config.dispensers, config.timezone)
    app.extensions["usage_config"] = config
    app.extensions["usage_store"] = store
    app.extensions["figures"] = Figures(store, config)

    for routes in (api_routes, ops_routes, dashboard_routes):
        app.register_blueprint(routes)
    init_metrics(app)
    init_pushes(app)
    register_error_handlers(app)
    socketio.init_app(
        app,
        async_mode=config.async_mode,
        message_queue=config.message_queue,
        cors_allowed_origins=config.cors_origins,
        serializer=PayloadPacket,
    )
    return app

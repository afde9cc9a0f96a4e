"""The application factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from app import pushes
from app.config import ServerConfig, load_config
from app.live import socketio
from app.store import Store

MAX_BODY = 1024 * 1024


def create_app(config: ServerConfig | str | Path | None = None) -> Flask:
    """Build the server from a ServerConfig or a config.toml path (default: $GEL_CONFIG or ./config.toml)."""
    if not isinstance(config, ServerConfig):
        config = load_config(config or os.environ.get("GEL_CONFIG", "config.toml"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["JSON_AS_ASCII"] = False
    app.extensions["usage_config"] = config
    app.extensions["usage_store"] = Store(config.database, config.dispensers, config.timezone)

    from app import api, errors, metrics, ops, views

    app.register_blueprint(api.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(views.bp)
    metrics.init_app(app)
    pushes.init_app(app)
    errors.register(app)
    socketio.init_app(
        app,
        async_mode=config.async_mode,
        message_queue=config.message_queue,
        cors_allowed_origins=config.cors_origins,
        serializer=pushes.PayloadPacket,
    )
    return app

"""The application factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from app import errors, metrics
from app.config import ServerConfig, load_config
from app.figures import Figures
from app.http import MAX_BODY, DispenserConverter
from app.realtime import pushes, socketio
from app.realtime.packets import PayloadPacket
from app.store import Store


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

    from app import api, ops, views  # the blueprints, registered here and imported nowhere else

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
        serializer=PayloadPacket,
    )
    return app

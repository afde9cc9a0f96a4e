"""What a request handler needs from the running app: its config, its store, its figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

from app.config import ServerConfig
from app.store import Store

if TYPE_CHECKING:
    from app.figures import Figures


def get_config() -> ServerConfig:
    """The typed server config of the current app."""
    return current_app.extensions["usage_config"]


def get_store() -> Store:
    """The usage store of the current app."""
    return current_app.extensions["usage_store"]


def get_figures() -> Figures:
    """The figures (payload builder and its caches) of the current app."""
    return current_app.extensions["figures"]

"""The usage server: Flask + Flask-SocketIO.

This module imports nothing heavy on purpose: `python -m app` must be able to monkey-patch eventlet
before Flask, SQLAlchemy or Socket.IO are imported. `create_app` and `socketio` load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "socketio"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from app.factory import create_app

        return create_app
    if name == "socketio":
        from app.live import socketio

        return socketio
    raise AttributeError(f"module 'app' has no attribute {name!r}")

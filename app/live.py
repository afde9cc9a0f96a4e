"""Live push: the Socket.IO server, the `donnees_utilisation` event and the periodic alert check."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask
from flask_socketio import SocketIO, emit

from app.figures import usage_payload
from app.metrics import get_metrics
from app.services import get_config, get_store

EVENT = "donnees_utilisation"
log = logging.getLogger(__name__)
socketio = SocketIO()


def current_payload() -> dict[str, Any]:
    """The GET payload, as every client sees it."""
    return usage_payload(get_store(), get_config())


def push(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send the figures to every dashboard (of every server process, through the message queue)."""
    payload = current_payload() if payload is None else payload
    socketio.emit(EVENT, payload)
    return payload


@socketio.on("connect")
def on_connect(auth: Any = None) -> None:
    """A dashboard that connects gets the figures at once."""
    get_metrics().dashboards.inc()
    emit(EVENT, current_payload())


@socketio.on("disconnect")
def on_disconnect(reason: Any = None) -> None:
    """Keep the connected-dashboards gauge true."""
    get_metrics().dashboards.dec()


def alert_state(payload: dict[str, Any]) -> str:
    """What the periodic check compares: the alerts and online flags, nothing that moves on its own."""
    return json.dumps(payload["alerts"], sort_keys=True)


def check_alerts(app: Flask, last: str | None) -> str:
    """Push the figures if the alerts changed since `last` (an offline transition needs no POST)."""
    with app.app_context():
        payload = current_payload()
        state = alert_state(payload)
        if last is not None and state != last:
            log.info("alerts changed alerts=%s", state)
            push(payload)
        return state


def run_watchdog(app: Flask) -> None:
    """Forever: check the alerts every `check_interval_s` seconds (a Socket.IO background task)."""
    interval = app.extensions["usage_config"].check_interval_s
    state = None
    while True:
        try:
            state = check_alerts(app, state)
        except Exception:  # the watchdog must outlive a database hiccup
            log.exception("alert check failed")
        socketio.sleep(interval)

"""Live push: the Socket.IO server, the `donnees_utilisation` event and the periodic alert check."""

from __future__ import annotations

import json
import logging
import uuid
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


class AlertMemory:
    """The last alert state, and who may check it: in this process, or shared through Redis."""

    # Take the lease if free, renew it if ours: atomic, so two processes never both hold it.
    LEASE = """
    if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
    if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
    return 0
    """

    def __init__(self, message_queue: str | None, lease_s: float):
        self.state: str | None = None
        self.redis = None
        if message_queue and message_queue.startswith(("redis://", "rediss://", "unix://")):
            import redis

            self.redis = redis.Redis.from_url(message_queue, socket_timeout=5)
            self.lease = self.redis.register_script(self.LEASE)
            self.me = uuid.uuid4().hex
            self.lease_ms = int(lease_s * 1000)

    def leader(self) -> bool:
        """True when this process is the one that runs the periodic check."""
        return self.redis is None or bool(self.lease(keys=["gel:alerts:leader"], args=[self.me, self.lease_ms]))

    def swap(self, state: str) -> str | None:
        """Record the new state; return the previous one (None the very first time)."""
        if self.redis is None:
            previous, self.state = self.state, state
            return previous
        previous = self.redis.set("gel:alerts:state", state, get=True)
        return previous.decode() if previous is not None else None


def check_alerts(app: Flask, memory: AlertMemory) -> bool:
    """Push the figures if the alerts changed since the last check; True if pushed."""
    with app.app_context():
        payload = current_payload()
        state = alert_state(payload)
        previous = memory.swap(state)
        if previous is not None and previous != state:
            log.info("alerts changed alerts=%s", state)
            push(payload)
            return True
        return False


def run_watchdog(app: Flask) -> None:
    """Forever: every `check_interval_s`, the cluster's one leader checks the alerts (a background task)."""
    cfg = app.extensions["usage_config"]
    memory = AlertMemory(cfg.message_queue, lease_s=max(3 * cfg.check_interval_s, 2))
    while True:
        try:
            if memory.leader():
                check_alerts(app, memory)
        except Exception:  # the watchdog must outlive a database or Redis hiccup
            log.exception("alert check failed")
        socketio.sleep(cfg.check_interval_s)

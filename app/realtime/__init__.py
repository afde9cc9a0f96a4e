"""Live push: the Socket.IO server and the `donnees_utilisation` event it carries.

`pushes` builds one push per group commit, `packets` encodes it once for every client, `watchdog` pushes when
the alerts change with no write at all.
"""

from __future__ import annotations

from flask_socketio import SocketIO

from app.figures import Payload
from app.services import get_figures

EVENT = "donnees_utilisation"
socketio = SocketIO()


def current_payload() -> Payload:
    """The GET payload, as every client sees it."""
    return get_figures().payload()


def push(payload: Payload | None = None) -> Payload:
    """Send the figures to every dashboard (of every server process, through the message queue)."""
    payload = current_payload() if payload is None else payload
    socketio.emit(EVENT, payload)
    return payload

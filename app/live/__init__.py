"""Live push: the Socket.IO server, the `donnees_utilisation` figures and the `donnees_delta` changes.

`rooms` places each client (full figures or deltas, all or one group), `pushes` sends one delta per group commit
and the full figures at most once a second, `packets` encodes a payload once for every client, `watchdog`
notices the alerts that change with no write at all.
"""

from __future__ import annotations

from flask import current_app
from flask_socketio import SocketIO

from app.extensions import get_figures
from app.live.figures import Payload

EVENT = "donnees_utilisation"
DELTA = "donnees_delta"
FULL_ROOM = "full"  # clients that never sent `join`: the full figures, at most once a second
ALL_ROOM = "all"  # the deltas of the whole fleet
socketio = SocketIO()


def group_room(group: str | None) -> str:
    """The room whose clients get the deltas of `group` (None: of every dispenser)."""
    return ALL_ROOM if group is None else f"group:{group}"


def current_payload() -> Payload:
    """The GET payload, as every client sees it."""
    return get_figures().payload()


def push() -> int:
    """Send the full figures to the clients that read them (of every server process, through the queue); their size.

    Never an older payload after a newer one: two pushes built concurrently (a round and the coalesced full
    figures) go out in the order of their change numbers, and the older is dropped if it comes second.
    """
    payload = current_payload()
    state = current_app.extensions["push_state"]  # app.live.pushes.PushState
    with state.full_lock:
        if payload["seq"] >= state.full_seq:
            state.full_seq = payload["seq"]
            socketio.emit(EVENT, payload, to=FULL_ROOM)
    return len(payload.encoded()[0])

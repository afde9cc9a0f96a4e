"""Where each Socket.IO client listens: the full figures (old clients), or the deltas of all or one group."""

from __future__ import annotations

import time
from typing import Any

from flask_socketio import emit, join_room, leave_room, rooms

import app.realtime as realtime
from app.metrics import get_metrics
from app.realtime import ALL_ROOM, EVENT, FULL_ROOM, group_room, socketio
from app.services import get_config, get_figures


@socketio.on("connect")
def on_connect(auth: Any = None) -> None:
    """A client that connects gets the full figures at once, then only full figures until it sends `join`."""
    get_metrics().dashboards.inc()
    join_room(FULL_ROOM)
    emit(EVENT, realtime.current_payload())


@socketio.on("disconnect")
def on_disconnect(reason: Any = None) -> None:
    """Keep the connected-dashboards gauge true."""
    get_metrics().dashboards.dec()


@socketio.on("join")
def on_join(data: Any = None) -> dict[str, Any]:
    """`{"group": ID}`: only that group's deltas from now on; `{"group": null}`: the whole fleet's.

    A client that joins speaks the delta protocol, so it stops getting the full figures every second. The
    acknowledgement carries the current change number: a client holding an older one (after a reconnect) GETs
    its figures again instead of waiting for the next change. Any other payload is refused, rooms unchanged.
    """
    group = data.get("group", ...) if isinstance(data, dict) and len(data) == 1 else ...
    if group is not None and not isinstance(group, str):
        return {"error": 'join takes {"group": null} or {"group": "<group id>"}'}
    if group is not None and group not in get_config().fleet.groups:
        return {"error": f"unknown group {group[:64]!r}"}
    for room in rooms():
        if room in (FULL_ROOM, ALL_ROOM) or room.startswith("group:"):
            leave_room(room)
    join_room(group_room(group))
    return {"group": group, "seq": get_figures().view.refresh(time.time())}


def reaches(room: str | None) -> bool:
    """True when an emit to `room` (None: anyone) can reach someone: a client here, or other processes."""
    if get_config().message_queue:
        return True
    server = socketio.server
    return server is not None and next(iter(server.manager.get_participants("/", room)), None) is not None

"""Where each Socket.IO client listens: the full figures (old clients), or the deltas of all or one group.

A client gets deltas only once it has sent `join`: until then it speaks the old protocol, full figures only (a
seed-style client at 1,000 dispensers does not pay for both).
"""

from __future__ import annotations

import time
from typing import Any

from flask_socketio import emit, join_room, leave_room, rooms

import app.live as realtime
from app.extensions import get_config, get_figures
from app.live import ALL_ROOM, DELTA, EVENT, FULL_ROOM, group_room, socketio
from app.metrics import get_metrics


@socketio.on("connect")
def on_connect(auth: Any = None) -> None:
    """A client that connects gets the full figures at once, then only full figures until it sends `join`.

    One that connects with `{"figures": false}` (a page of one group, which GETs its group's figures and joins)
    gets nothing until its join: at 10,000 dispensers the whole fleet's figures are megabytes it would drop.
    """
    get_metrics().dashboards.inc()
    if isinstance(auth, dict) and auth.get("figures") is False:
        return
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
    acknowledgement carries the server's `seq` now, so that a client back from a disconnection knows whether what
    it holds is stale; with `"since": SEQ` (the seq it holds) the server first sends it the `donnees_delta` of what
    changed in the group after SEQ, if anything did. Any other payload is refused, its rooms unchanged.
    """
    known = isinstance(data, dict) and "group" in data and set(data) <= {"group", "since"}
    group = data["group"] if known else ...
    if group is not None and not isinstance(group, str):
        return {"error": 'join takes {"group": null} or {"group": "<group id>"}, and optionally "since": SEQ'}
    if group is not None and group not in get_config().fleet.groups:
        return {"error": f"unknown group {group[:64]!r}"}
    since = data.get("since")
    if since is not None and (type(since) is not int or since < 0):
        return {"error": "since must be a change sequence number (an integer >= 0), as `seq` in a payload"}
    for room in rooms():
        if room in (FULL_ROOM, ALL_ROOM) or room.startswith("group:"):
            leave_room(room)
    join_room(group_room(group))  # before reading: every delta pushed after the read below reaches this client
    figures = get_figures()
    seq = figures.view.refresh(time.time())
    if since is not None:
        missed = figures.delta(since, group)  # None when nothing of the group changed (or since is unknown here)
        if missed is not None:
            emit(DELTA, missed)  # sent before the acknowledgement
            seq = missed["seq"]
    return {"group": group, "seq": seq}


def reaches(room: str | None) -> bool:
    """True when an emit to `room` (None: anyone) can reach someone: a client here, or other processes."""
    if get_config().message_queue:
        return True
    server = socketio.server
    return server is not None and next(iter(server.manager.get_participants("/", room)), None) is not None

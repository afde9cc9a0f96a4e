"""Pushes that cost little: built once per group commit and never for nobody, at most one at a time."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, current_app
from flask_socketio import emit

import app.realtime as realtime
from app.figures import Payload
from app.metrics import get_metrics
from app.realtime import EVENT, socketio
from app.services import get_config, get_store

log = logging.getLogger(__name__)


@socketio.on("connect")
def on_connect(auth: Any = None) -> None:
    """A dashboard that connects gets the figures at once."""
    get_metrics().dashboards.inc()
    emit(EVENT, realtime.current_payload())


@socketio.on("disconnect")
def on_disconnect(reason: Any = None) -> None:
    """Keep the connected-dashboards gauge true."""
    get_metrics().dashboards.dec()


def has_listeners() -> bool:
    """True when a push can reach someone: a dashboard connected here, or other processes through the queue."""
    if get_config().message_queue:
        return True
    server = socketio.server
    return server is not None and next(iter(server.manager.get_participants("/", None)), None) is not None


class PushState:
    """Per app: the last group commit a push carried, and whether a push is being built right now."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pushed_upto = 0
        self.building = False
        self.again = False

    def push_round(self) -> Payload:
        """Build and send one push; note the commits it carries."""
        upto = get_store().commits  # read before the payload: what it shows includes at least this commit
        payload = realtime.push()
        with self.lock:
            self.pushed_upto = max(self.pushed_upto, upto)
        return payload

    def done_or_again(self) -> bool:
        """After a round: True (and no longer building) unless commits arrived meanwhile."""
        with self.lock:
            if self.again:
                self.again = False
                return False
            self.building = False
            return True

    def stop(self) -> None:
        """A round failed: let the next commit build afresh."""
        with self.lock:
            self.building = self.again = False


def init_pushes(app: Flask) -> None:
    """Give the app its push state."""
    app.extensions["push_state"] = PushState()


def push_after(commit: int) -> Payload | None:
    """Push the figures after group commit `commit`; at most one push is built at a time, none twice.

    Returns the payload pushed, or None when nobody listens (headless ingest builds no payload), when a push
    read after this commit already went out (requests that shared a commit share its push), or when a push is
    being built: another round follows it then, so this commit is pushed without waiting here.
    """
    if not has_listeners():
        return None
    state: PushState = current_app.extensions["push_state"]
    with state.lock:
        if commit <= state.pushed_upto:
            return None
        if state.building:
            state.again = True
            return None
        state.building = True
    try:
        payload = state.push_round()
    except BaseException:
        state.stop()
        raise
    if not state.done_or_again():
        # Commits arrived during this round: the next rounds run in the background, so that under steady load
        # this request's answer does not wait for pushes built for others.
        socketio.start_background_task(_push_rounds, current_app._get_current_object(), state)
    return payload


def _push_rounds(app: Flask, state: PushState) -> None:
    """Push again until a round ends with no new commit behind it."""
    with app.app_context():
        try:
            while True:
                state.push_round()
                if state.done_or_again():
                    return
                socketio.sleep(0)  # let the requests waiting on the hub go on between rounds
        except Exception:
            state.stop()
            log.exception("push failed")


def push_write() -> Payload:
    """After a write outside the group commit (a refill): push the figures if anyone listens; return them."""
    return realtime.push() if has_listeners() else realtime.current_payload()

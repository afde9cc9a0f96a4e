"""Pushes that cost what changed: one delta per group commit to the rooms it concerns, full figures once a second.

A round reads the rows written since the last round (through the seq index) and sends each room concerned the
entries of its changed dispensers, its totals and alerts: a use costs the same with 3 or 3,000 dispensers. The
old clients' full figures are coalesced: at most one build and send per second, whatever the rate of uses.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app

import app.live as realtime
from app.extensions import get_figures
from app.live import DELTA, FULL_ROOM, group_room, socketio
from app.live.figures import Figures
from app.live.rooms import reaches

FULL_EVERY_S = 1.0  # large full figures go out at most this often
# Full figures smaller than this go out after every change, as the seed's clients expect: a few dozen dispensers
# (a 3-dispenser site's are about 1 KB). Above it, one push a second bounds what every use costs the old clients.
PROMPT_FULL_BYTES = 16 * 1024
log = logging.getLogger(__name__)


def has_listeners() -> bool:
    """True when a push can reach someone: a client connected here, or other processes through the queue."""
    return reaches(None)  # the None room holds every client


class PushState:
    """Per app: the change pushed last, each room's last delta, whether a round runs, when full figures may go."""

    def __init__(self, origin: int) -> None:
        self.lock = threading.Lock()
        self.origin = origin  # every client connected after this change: the base of a room's first delta
        self.pushed = origin  # changes up to this one were pushed
        self.rooms: dict[str, int] = {}  # room -> the change its last delta carried (what its clients hold)
        self.building = False
        self.again = False
        self.full_due = 0.0  # monotonic time before which no full figures go out
        self.full_waiting = False
        self.full_small = False  # the last full figures sent were under PROMPT_FULL_BYTES: send each change's
        self.full_lock = threading.Lock()  # full figures go out one at a time, in change order (app.live.push)
        self.full_seq = -1  # the change of the last full figures sent

    def push_round(self) -> None:
        """Send the deltas of every change since the last round, then the full figures when due."""
        figures = get_figures()
        base = self.pushed
        seq = figures.view.refresh(time.time())
        if seq > base:
            self.send_deltas(figures, figures.view.changed_ids(base), seq)
        with self.lock:
            self.pushed = max(self.pushed, seq)
        self.full_soon()

    def send_deltas(self, figures: Figures, ids: list[str], seq: int) -> None:
        """One delta per room concerned: the fleet's, and each group's above a changed dispenser."""
        groups = {g for i in ids for g in figures.view.fleet.ancestors(i)}
        for group in [None, *sorted(groups)] if ids else []:
            room = group_room(group)
            base = self.rooms.get(room, self.origin)
            self.rooms[room] = seq  # even unheard: a client joining later sees the gap and re-reads
            if reaches(room):
                delta = figures.delta_of(ids, base, group, seq)
                if delta is not None:
                    socketio.emit(DELTA, delta, to=room)

    def full_soon(self) -> None:
        """The full figures for the old clients: now if small or if the last ones went a second ago, else then."""
        if not reaches(FULL_ROOM):
            return
        if self.full_small:
            self.full_small = realtime.push() < PROMPT_FULL_BYTES
            return
        with self.lock:
            if self.full_waiting:
                return
            wait = self.full_due - time.monotonic()
            self.full_waiting = wait > 0
            if wait <= 0:
                self.full_due = time.monotonic() + FULL_EVERY_S
        if wait <= 0:
            self.full_small = realtime.push() < PROMPT_FULL_BYTES
        else:
            socketio.start_background_task(self._full_later, current_app._get_current_object(), wait)

    def _full_later(self, app: Flask, wait: float) -> None:
        """The coalesced full figures: whatever changed during the wait goes out in one push."""
        socketio.sleep(wait)
        with self.lock:
            self.full_waiting = False
            self.full_due = time.monotonic() + FULL_EVERY_S
        with app.app_context():
            try:
                self.full_small = realtime.push() < PROMPT_FULL_BYTES
            except Exception:
                log.exception("full figures push failed")

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
    """Give the app its push state, starting from the change its figures hold now."""
    app.extensions["push_state"] = PushState(app.extensions["figures"].view.refresh(time.time()))


def push_after(seq: int) -> bool:
    """Push what changed up to change `seq`; at most one round is built at a time, no change pushed twice.

    False when nobody listens (headless ingest builds nothing), when a round read after this change already
    went out (requests that shared a commit share its push), or when a round is being built: another follows
    it then, so this change is pushed without waiting here.
    """
    if not has_listeners():
        return False
    state: PushState = current_app.extensions["push_state"]
    with state.lock:
        if seq <= state.pushed:
            return False
        if state.building:
            state.again = True
            return False
        state.building = True
    try:
        state.push_round()
    except BaseException:
        state.stop()
        raise
    # Let the websocket writers send it now, before this request builds and writes its answer: the push then
    # reaches the dashboards one answer sooner (BENCHMARKS.md, the push's tail).
    socketio.sleep(0)
    if not state.done_or_again():
        # Commits arrived during this round: the next rounds run in the background, so that under steady load
        # this request's answer does not wait for pushes built for others.
        socketio.start_background_task(_push_rounds, current_app._get_current_object(), state)
    return True


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


def push_write() -> bool:
    """After a write outside the group commit (refill, heartbeat, a flag moved with time): push what changed."""
    return push_after(get_figures().view.refresh(time.time())) if has_listeners() else False

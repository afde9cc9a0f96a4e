"""Alerts that change with no write (a dispenser falls silent): checked periodically, pushed when they move."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

from flask import Flask

import app.live as live
from app.extensions import get_figures, get_store
from app.live import socketio
from app.live.figures import Payload
from app.live.pushes import push_write

log = logging.getLogger(__name__)


def alert_state(payload: Payload) -> str:
    """What is compared: the alerts, nothing that moves on its own."""
    return json.dumps(payload["alerts"], sort_keys=True)


def push_if_alerts_changed(swap: Callable[[str], str | None]) -> bool:
    """Push the figures if their alerts differ from what the dashboards last received; True if pushed.

    `swap` records the new check and returns the previous one (None when there is none to compare with). What
    the dashboards hold is the previous check's alerts, except for the dispensers written since: each write's
    push carried them online, so one of them offline now flipped after that push, even if it was offline at
    the previous check too (it reported once and fell silent again between two checks).
    """
    payload = live.current_payload()
    state = alert_state(payload)
    check = {"alerts": state, "seq": payload["seq"], "touched": [], "touch_seq": None}
    previous = swap(json.dumps(check))
    before = json.loads(previous) if previous is not None else None
    if not isinstance(before, dict):  # the first check, or one recorded by an older release: nothing to compare
        return False
    moved = moved_with_time(json.loads(before["alerts"]), payload["alerts"])
    moved = sorted(set(moved) | flipped_since(before, payload["alerts"]))
    if not moved and before["alerts"] == state:
        return False
    log.info("alerts changed alerts=%s", state)
    if moved:  # a change number for them: deltas and `?since` polls carry their new flags like any write
        check.update(touched=moved, touch_seq=get_store().touch(moved))
        swap(json.dumps(check))
    push_write()
    return True


def flipped_since(before: dict, alerts: list[dict]) -> set[str]:
    """The dispensers offline now that were written after the previous check (its own touch aside)."""
    offline = {a["dispenser"] for a in alerts if a["kind"] == "offline"}
    if not offline:
        return set()
    view = get_figures().view
    written = set(view.changed_ids(before["seq"])) - set(before["touched"])
    if before["touch_seq"] is not None:  # written again after the previous check's own touch
        written |= set(view.changed_ids(before["touch_seq"]))
    return written & offline


def moved_with_time(before: list[dict], after: list[dict]) -> list[str]:
    """The dispensers whose offline or no-use alert came or went (the alerts that move with no write)."""
    timed = ("offline", "no_use")
    was = {(a["dispenser"], a["kind"]) for a in before if a["kind"] in timed}
    now = {(a["dispenser"], a["kind"]) for a in after if a["kind"] in timed}
    return sorted({d for d, _ in was ^ now})


class AlertMemory:
    """The last alert state, and who may check it: in this process, or shared through Redis."""

    # Take the lease if free, renew it if ours: atomic, so two processes never both hold it.
    LEASE = """
    if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
    if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
    return 0
    """

    def __init__(self, message_queue: str | None, lease_s: float, key: str = "gel:alerts:leader"):
        self.state: str | None = None
        self.key = key
        self.redis = None
        if message_queue and message_queue.startswith(("redis://", "rediss://", "unix://")):
            import redis

            self.redis = redis.Redis.from_url(message_queue, socket_timeout=5)
            self.lease = self.redis.register_script(self.LEASE)
            self.me = uuid.uuid4().hex
            self.lease_ms = int(lease_s * 1000)

    def leader(self) -> bool:
        """True when this process is the one that runs the periodic check."""
        return self.redis is None or bool(self.lease(keys=[self.key], args=[self.me, self.lease_ms]))

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
        return push_if_alerts_changed(memory.swap)


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

"""Delivery: each target's messages in order, retried with backoff, many at once as one digest; one process only."""

from __future__ import annotations

import json
import logging
import time

from flask import Flask

from app.config import ServerConfig
from app.config.outlets import NotifyTarget
from app.notify.reports import queue_due_reports
from app.notify.senders import NotDelivered, send_apprise, send_report, send_webhook, webhook_body
from app.notify.texts import alert_text, digest_text, strings
from app.notify.tracker import message_id, track
from app.store import Store
from app.store.outbox import mark_failed, mark_sent, open_messages

log = logging.getLogger(__name__)
BACKOFF_MAX_S = 600  # retries: 1 s, doubling, at most every 10 minutes
DIGEST_WINDOW_S = 60  # transitions written within this long of each other may go out as one digest
BATCH = 500  # messages of one target looked at per round
LOOK_S = 0.5  # how often what was written is looked at: a raised alert waits at most this, then settle_s


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones."""
    return float(min(2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


class Deliverer:
    """Sends what is due, target by target; counts outcomes for /metrics."""

    def __init__(self, store: Store, metrics: object | None = None):
        self.store, self.metrics = store, metrics
        self.next_due = float("inf")  # when the soonest message not yet due is: the worker wakes for it

    def round(self, cfg: ServerConfig, now: float | None = None) -> int:
        """Send every message due now, in order per target; return how many were delivered."""
        sent = 0
        self.next_due = float("inf")
        for target in cfg.targets():
            sent += self.drain(target, cfg, time.time() if now is None else now)
        return sent

    def drain(self, target: NotifyTarget, cfg: ServerConfig, now: float) -> int:
        """Send the target's due messages from its oldest until one fails or none is due."""
        rows = open_messages(self.store, target.id, BATCH)
        due = []
        for row in rows:  # in order: a message waits for every older one of its target
            if row.due_at > now:
                self.next_due = min(self.next_due, row.due_at)
                break
            due.append(row)
        if not due:
            return 0
        if target.apprise and len(due) > cfg.digest_after \
                and due[cfg.digest_after].created_at - due[0].created_at <= DIGEST_WINDOW_S:
            burst = [r for r in due if r.created_at - due[0].created_at <= DIGEST_WINDOW_S]
            return self.attempt(target, burst, cfg, now, digest=True)
        delivered = 0
        for row in due:
            if not self.attempt(target, [row], cfg, now):
                break
            delivered += 1
        return delivered

    def attempt(self, target: NotifyTarget, rows: list, cfg: ServerConfig, now: float, digest: bool = False) -> int:
        """One try for these rows (one message, or one digest of them); how many were delivered."""
        try:
            self.send(target, rows, cfg, now, digest)
        except NotDelivered as exc:
            give_up = now - rows[0].created_at >= cfg.give_up_h * 3600
            retry = None if give_up else now + backoff(rows[0].attempts + 1)
            mark_failed(self.store, [r.id for r in rows], str(exc), retry, now)
            log.warning("notification to %s not delivered (try %d): %s%s", target.id, rows[0].attempts + 1, exc,
                        ", given up" if give_up else f", next try in {backoff(rows[0].attempts + 1):.0f} s")
            self.count("failed", target, len(rows))
            return 0
        mark_sent(self.store, [r.id for r in rows], time.time())
        self.count("sent", target, len(rows))
        return len(rows)

    def send(self, target: NotifyTarget, rows: list, cfg: ServerConfig, now: float, digest: bool) -> None:
        """Speak to the receiver: a signed POST per message, or Apprise's title and body."""
        if target.webhook:
            row = rows[0]
            send_webhook(target, row.msg_id, webhook_body(row.type, row.created_at, json.loads(row.body)))
            return
        if digest:
            items = [json.loads(r.body) for r in rows]
            groups = {i.get("path", [None])[-1] if i.get("path") else None for i in items}
            title, body = digest_text(cfg.language, groups.pop() if len(groups) == 1 else None, items)
        elif rows[0].type.startswith("alert."):
            data = json.loads(rows[0].body)
            title, body = alert_text(cfg.language, cfg.timezone, rows[0].type.removeprefix("alert."), data, now)
        else:
            data = json.loads(rows[0].body)
            if "html" in data:  # the weekly report: HTML (Apprise adds the text alternative) and its CSV attached
                send_report(target, data)
                return
            title, body = data.get("title", ""), data.get("text", "")
        send_apprise(target, title, body)

    def count(self, outcome: str, target: NotifyTarget, n: int) -> None:
        if self.metrics is not None and n:
            getattr(self.metrics, f"notifications_{outcome}").labels(target.id).inc(n)


def run_notifications(app: Flask, sleep: object, leader: object) -> None:
    """Forever (a background task): look for alert transitions every `check_interval_s`, deliver every second."""
    deliverer = Deliverer(app.extensions["usage_store"], app.extensions.get("usage_metrics"))
    looked, seen = 0.0, -1
    reported: set[str] = set()
    started = time.time()
    while True:
        cfg: ServerConfig = app.extensions["usage_config"]  # a reload may swap it
        try:
            if cfg.targets() and leader():
                figures = app.extensions["figures"]
                grace = started + cfg.offline_after_s
                if time.monotonic() - looked >= cfg.check_interval_s:  # everything, what moved with time too
                    looked, seen = time.monotonic(), figures.view.refresh(time.time())
                    with app.app_context():
                        if cfg.notify:
                            track(figures, cfg, offline_from=grace)
                        queue_due_reports(deliverer.store, cfg, time.time(), reported)
                elif cfg.notify and (seq := figures.view.refresh(time.time())) != seen:  # what was written
                    changed, seen = figures.view.changed_ids(seen), seq
                    track(figures, cfg, offline_from=grace, ids=changed)
                deliverer.round(cfg)
        except Exception:  # a database or receiver hiccup must not end notifications
            log.exception("notification round failed")
        sleep(max(0.05, min(LOOK_S, deliverer.next_due - time.time())))


def send_test(cfg: ServerConfig, target_id: str) -> None:
    """`notify-test`: a test message to one target now, through the same senders (KeyError: no such target)."""
    target = {t.id: t for t in cfg.targets()}[target_id]
    now = time.time()
    text = {"title": strings(cfg.language)["title_test"],
            "text": strings(cfg.language)["test"].format(target=target_id)}
    if target.webhook:
        send_webhook(target, message_id("test", target_id, now), webhook_body("test", now, text))
    else:
        send_apprise(target, text["title"], text["text"])

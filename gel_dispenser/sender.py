"""The sender thread: delivers the spool in batches, sends heartbeats and refills; never blocks a dose."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests

from gel_dispenser import __version__
from gel_dispenser.config import Config
from gel_dispenser.spool import BOOT_ID, Pending, Spool
from gel_dispenser.streak import Streak
from gel_dispenser.wire import MAX_RETRY_AFTER_S, MIN_RETRY_AFTER_S, Answer, BoundedAdapter, Failed, exchange

log = logging.getLogger("dispenser")

CLOCK_HEADER = "X-Dispenser-Clock"


def ack_problem(payload: dict[str, Any] | None, size: int) -> Failed | None:
    """Why a 2xx answer does not acknowledge a batch of `size` events, or None when it does."""
    if payload is None:
        return Failed("answer not JSON")
    counts = [payload.get("accepted"), payload.get("duplicates")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return Failed("answer without accepted and duplicates counts")
    if counts[0] + counts[1] != size:
        return Failed("answer counts another batch", f"accepted={counts[0]} duplicates={counts[1]} sent={size}")
    return None


class Sender:
    """Background thread: delivers the spool in batches, sends heartbeats and refills; never blocks a dose."""

    def __init__(self, cfg: Config, spool: Spool, clock: Callable[[], float] = time.time, boot: str = BOOT_ID):
        self.cfg, self.spool = cfg, spool
        self.clock, self.boot = clock, boot
        self.base = cfg.server_url.rstrip("/")
        self.http = requests.Session()
        self.http.mount("http://", BoundedAdapter())
        self.http.mount("https://", BoundedAdapter())
        self.http.headers.update({"Authorization": f"Bearer {cfg.token}", "Content-Type": "application/json",
                                  "User-Agent": f"gel-dispenser/{__version__}",
                                  "Accept-Encoding": "identity"})  # the cap counts what the server sent
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify: str | bool = str(cfg.ca_file) if cfg.ca_file is not None else True
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._progress = threading.Condition()  # notified after each delivery round, for wait_empty()
        self._failures = 0
        self._streaks = {"delivery": Streak(), "heartbeat": Streak(), "refill": Streak()}
        self._retry_at = 0.0  # our own backoff: skipped by wait_empty()
        self._server_hold = 0.0  # a 429's Retry-After: the server asked, so even a flush waits for it
        self._next_heartbeat = 0.0  # the first heartbeat goes out at start, so the dashboard sees us at once
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)

    def start(self) -> Sender:
        """Start the background thread."""
        self._thread.start()
        return self

    def wake(self) -> None:
        """An event was spooled: deliver it now (unless backing off)."""
        self._wake.set()

    def request_refill(self) -> None:
        """The refill button was pressed: tell the server (persisted, so a restart still reports it)."""
        self.spool.set_counter("refill_pending", 1)
        self._wake.set()

    def wait_empty(self, timeout: float) -> bool:
        """Try to deliver everything now; True when the spool is empty within `timeout` seconds."""
        self._retry_at = 0.0  # skip the current backoff: someone is waiting for this
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.spool.backlog():
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._progress.wait(min(left, 1.0))  # capped only to notice a dead sender thread
        return True

    def stop(self, flush_s: float = 0.0) -> bool:
        """Deliver for at most `flush_s` seconds, then stop; True when the thread is gone."""
        if flush_s > 0 and self._thread.is_alive() and self.spool.backlog():
            self.wait_empty(flush_s)
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.cfg.deadline_s + 1)
        self.http.close()
        return not self._thread.is_alive()

    def _ready_at(self) -> float:
        return max(self._retry_at, self._server_hold)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before reading the spool, so an event added meanwhile wakes us again
            try:
                self._round()
            except Exception:  # anything unexpected: keep the thread alive and retry later
                log.exception("sender error dispenser=%s", self.cfg.id)
                self._retry_at = time.monotonic() + self._delay()
            with self._progress:
                self._progress.notify_all()
            until = self._next_heartbeat
            if self.spool.backlog() or self.spool.counter("refill_pending"):
                until = min(until, self._ready_at())
            self._wake.wait(max(0.0, until - time.monotonic()))

    def _round(self) -> None:
        if time.monotonic() >= self._ready_at():
            self._deliver()
            if self.spool.counter("refill_pending"):
                self._refill()
        if time.monotonic() >= self._next_heartbeat:
            self._next_heartbeat = time.monotonic() + self.cfg.heartbeat_s
            self._heartbeat()

    def _deliver(self) -> None:
        while not self._stopping.is_set():
            rows = self.spool.due(self.cfg.batch_size)
            if not rows:
                return
            retry_in = self._send(rows)
            if retry_in is not None:
                self._retry_at = time.monotonic() + retry_in
                return

    def body(self, rows: list[Pending]) -> bytes:
        """The JSON array for a batch; doses of this boot carry `age_s`, their age by the monotonic clock."""
        now = time.monotonic()
        parts = []
        for row in rows:
            if row.monotonic is None or row.boot != self.boot:
                parts.append(row.body)
                continue
            event = json.loads(row.body)
            event["age_s"] = round(max(0.0, now - row.monotonic), 3)
            parts.append(json.dumps(event, separators=(",", ":")))
        return ("[" + ",".join(parts) + "]").encode()

    def _post(self, url: str, body: bytes) -> Answer:
        """POST with our wall clock in a header (the server corrects doses without `age_s` by its offset).

        Redirects are never followed, the answer is read up to a cap, the whole exchange has a deadline."""
        return exchange(self.http, url, body, headers={CLOCK_HEADER: f"{self.clock():.3f}"},
                        timeout=self.cfg.timeout_s, deadline_s=self.cfg.deadline_s, verify=self.verify)

    def _send(self, rows: list[Pending]) -> float | None:
        """POST one batch; None when done with it (delivered or quarantined), else seconds before a retry."""
        try:
            answer = self._post(self.base + "/mettre_a_jour_donnees", self.body(rows))
        except Failed as exc:
            return self._backoff(exc, len(rows))
        status = answer.status
        if answer.ok:
            return self._acknowledged(rows, answer)
        if (status in (400, 413) or self._over_server_batch(answer, len(rows))) and len(rows) > 1:
            # Split so one bad event (or an oversized batch) does not hold back the good ones.
            half = len(rows) // 2
            first = self._send(rows[:half])
            return first if first is not None else self._send(rows[half:])
        return self._not_delivered(rows, answer)

    def _acknowledged(self, rows: list[Pending], answer: Answer) -> float | None:
        """Delete the batch only when the answer counts each of its events as accepted or duplicate."""
        payload = answer.json_object()
        problem = ack_problem(payload, len(rows))
        if problem is not None or payload is None:
            return self._backoff(problem or Failed("answer not JSON"), len(rows))
        self.spool.delete([row.seq for row in rows])
        self._failures = 0
        failed = self._streaks["delivery"].ended()
        log.info("delivered dispenser=%s events=%d accepted=%s duplicates=%s backlog=%d%s", self.cfg.id, len(rows),
                 payload["accepted"], payload["duplicates"], self.spool.backlog(),
                 f" after_failed_attempts={failed}" if failed else "")
        return None

    @staticmethod
    def _over_server_batch(answer: Answer, size: int) -> bool:
        """A 429 saying a batch this large can never fit the server's rate limit (its `max_batch`): split it."""
        limit = (answer.json_object() or {}).get("max_batch") if answer.status == 429 else None
        return isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < size

    def _hold(self, wait: float, what: str) -> float:
        """A server's Retry-After, capped (and the cap logged): one bad answer cannot stop delivery for long."""
        if wait > MAX_RETRY_AFTER_S:
            log.warning("%s retry_after=%.0fs capped to %.0fs dispenser=%s", what, wait, MAX_RETRY_AFTER_S,
                        self.cfg.id)
        return min(max(wait, MIN_RETRY_AFTER_S), MAX_RETRY_AFTER_S)

    def _not_delivered(self, rows: list[Pending], answer: Answer) -> float | None:
        status = answer.status
        error = answer.error()
        if status in (400, 413):
            self.spool.quarantine(rows, status, error)
            log.error("quarantined dispenser=%s event_id=%s status=%d error=%r", self.cfg.id, rows[0].event_id,
                      status, error)
            return None
        wait = answer.retry_after() if status in (429, 503) else None
        if wait is not None:
            wait = self._hold(wait, "delivery")
            self._server_hold = time.monotonic() + wait
            log.warning("delivery deferred dispenser=%s status=%d events=%d backlog=%d retry_after=%.1fs",
                        self.cfg.id, status, len(rows), self.spool.backlog(), wait)
            return 0.0
        if status == 401 or (400 <= status < 500 and status not in (408, 429)):
            level = self._streaks["delivery"].failed(f"refused status={status}", logging.ERROR)
            log.log(level, "refused dispenser=%s status=%d error=%r backlog=%d retry_in=%.0fs "
                    "hint='check token and server_url in [dispenser] and [[server.dispensers]]'",
                    self.cfg.id, status, error, self.spool.backlog(), self.cfg.auth_retry_s)
            return self.cfg.auth_retry_s
        return self._backoff(Failed(f"status={status}"), len(rows))

    def _delay(self) -> float:
        """Capped exponential backoff with jitter, so many dispensers do not retry in step."""
        delay = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** min(self._failures, 30))
        self._failures += 1
        return delay * random.uniform(0.5, 1.0)

    def _backoff(self, failure: Failed, events: int) -> float:
        """A failed delivery: the delay before the next try; each reason logged once per failure streak."""
        delay = self._delay()
        level = self._streaks["delivery"].failed(failure.reason)
        log.log(level, "delivery failed dispenser=%s %s events=%d backlog=%d attempt=%d retry_in=%.1fs",
                self.cfg.id, failure, events, self.spool.backlog(), self._failures, delay)
        return delay

    def _post_ops(self, what: str, body: dict[str, Any] | None,
                  acknowledges: Callable[[dict[str, Any]], bool]) -> Answer | None:
        """POST a heartbeat or a refill: its answer, or None when there is none or a 2xx that does not acknowledge it.

        A 2xx acknowledges only as a JSON object the usage server would answer (`acknowledges`)."""
        url = f"{self.base}/api/dispensers/{quote(self.cfg.id, safe='')}/{what}"
        streak = self._streaks[what]
        try:
            answer = self._post(url, json.dumps(body or {}).encode())
        except Failed as exc:
            log.log(streak.failed(exc.reason), "%s failed dispenser=%s %s", what, self.cfg.id, exc)
            return None
        payload = answer.json_object() if answer.ok else None
        if answer.ok and (payload is None or not acknowledges(payload)):
            reason = "answer not JSON" if payload is None else "answer does not acknowledge it"
            log.log(streak.failed(reason), "%s failed dispenser=%s %s status=%d", what, self.cfg.id, reason,
                    answer.status)
            return None
        if not answer.ok:
            level = streak.failed(f"status={answer.status}", logging.ERROR)
            log.log(level, "%s failed dispenser=%s status=%d error=%r", what, self.cfg.id, answer.status,
                    answer.error()[:200])
            return answer
        streak.ended()
        log.debug("%s dispenser=%s status=%d", what, self.cfg.id, answer.status)
        return answer

    def _heartbeat(self) -> None:
        self._post_ops("heartbeat", {"backlog": self.spool.backlog(), "version": __version__,
                                     "missed": self.spool.counter("missed"),
                                     "stuck": bool(self.spool.counter("stuck"))},
                       lambda payload: payload.get("status") == "ok")

    def _refill(self) -> None:
        answer = self._post_ops("refill", None, self._names_us)
        if answer is not None and answer.ok:
            self.spool.set_counter("refill_pending", 0)
            log.info("refill dispenser=%s reported=yes", self.cfg.id)
        elif answer is None or answer.status >= 500 or answer.status == 429:
            wait = None if answer is None else answer.retry_after()
            delay = self._delay() if wait is None else self._hold(wait, "refill")
            self._retry_at = max(self._retry_at, time.monotonic() + delay)
        else:
            self.spool.set_counter("refill_pending", 0)  # refused for good (wrong id or token): do not loop

    def _names_us(self, payload: dict[str, Any]) -> bool:
        """A refill's acknowledgement: the usage server answers with this dispenser's entry."""
        entry = payload.get("dispenser")
        return isinstance(entry, dict) and entry.get("id") == self.cfg.id

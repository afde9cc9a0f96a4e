"""The sender thread: delivers the spool in batches, sends heartbeats and refills; never blocks a dose."""

from __future__ import annotations

import json
import logging
import math
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

log = logging.getLogger("dispenser")

CLOCK_HEADER = "X-Dispenser-Clock"
MAX_RETRY_AFTER_S = 3600.0  # a server asking for longer is misconfigured: try again within the hour


def retry_after(resp: requests.Response) -> float | None:
    """The seconds of a Retry-After header (bounded), or None when it is absent or not a number of seconds."""
    try:
        seconds = float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return None if math.isnan(seconds) else min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class Sender:
    """Background thread: delivers the spool in batches, sends heartbeats and refills; never blocks a dose."""

    def __init__(self, cfg: Config, spool: Spool, clock: Callable[[], float] = time.time, boot: str = BOOT_ID):
        self.cfg, self.spool = cfg, spool
        self.clock, self.boot = clock, boot
        self.base = cfg.server_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {cfg.token}", "Content-Type": "application/json",
                                  "User-Agent": f"gel-dispenser/{__version__}"})
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify: str | bool = str(cfg.ca_file) if cfg.ca_file is not None else True
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._progress = threading.Condition()  # notified after each delivery round, for wait_empty()
        self._failures = 0
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
            self._thread.join(self.cfg.timeout_s + 1)
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
                self._retry_at = time.monotonic() + self._backoff("sender error", 0)
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

    def _post(self, url: str, body: bytes) -> requests.Response:
        """POST with our wall clock in a header: the server corrects doses without `age_s` by its offset."""
        return self.http.post(url, data=body, timeout=self.cfg.timeout_s, verify=self.verify,
                              headers={CLOCK_HEADER: f"{self.clock():.3f}"})

    def _send(self, rows: list[Pending]) -> float | None:
        """POST one batch; None when done with it (delivered or quarantined), else seconds before a retry."""
        try:
            resp = self._post(self.base + "/mettre_a_jour_donnees", self.body(rows))
        except requests.RequestException as exc:
            return self._backoff(f"network error={type(exc).__name__}", len(rows))
        status = resp.status_code
        if 200 <= status < 300:
            self.spool.delete([row.seq for row in rows])
            self._failures = 0
            answer = _json_or_empty(resp)
            log.info("delivered dispenser=%s events=%d accepted=%s duplicates=%s backlog=%d", self.cfg.id, len(rows),
                     answer.get("accepted"), answer.get("duplicates"), self.spool.backlog())
            return None
        if status in (400, 413) and len(rows) > 1:
            # Split so one bad event (or an oversized batch) does not hold back the good ones.
            half = len(rows) // 2
            first = self._send(rows[:half])
            return first if first is not None else self._send(rows[half:])
        return self._not_delivered(rows, resp)

    def _not_delivered(self, rows: list[Pending], resp: requests.Response) -> float | None:
        status = resp.status_code
        error = str(_json_or_empty(resp).get("error", resp.text[:200]))
        if status in (400, 413):
            self.spool.quarantine(rows, status, error)
            log.error("quarantined dispenser=%s event_id=%s status=%d error=%r", self.cfg.id, rows[0].event_id,
                      status, error)
            return None
        wait = retry_after(resp) if status in (429, 503) else None
        if wait is not None:
            self._server_hold = time.monotonic() + wait
            log.warning("delivery deferred dispenser=%s status=%d events=%d backlog=%d retry_after=%.1fs",
                        self.cfg.id, status, len(rows), self.spool.backlog(), wait)
            return 0.0
        if status == 401 or (400 <= status < 500 and status not in (408, 429)):
            log.error("refused dispenser=%s status=%d error=%r backlog=%d retry_in=%.0fs "
                      "hint='check token and server_url in [dispenser] and [[server.dispensers]]'",
                      self.cfg.id, status, error, self.spool.backlog(), self.cfg.auth_retry_s)
            return self.cfg.auth_retry_s
        return self._backoff(f"status={status}", len(rows))

    def _backoff(self, reason: str, events: int) -> float:
        """Capped exponential backoff with jitter, so many dispensers do not retry in step."""
        delay = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** min(self._failures, 30))
        delay *= random.uniform(0.5, 1.0)
        self._failures += 1
        log.warning("delivery failed dispenser=%s %s events=%d backlog=%d attempt=%d retry_in=%.1fs",
                    self.cfg.id, reason, events, self.spool.backlog(), self._failures, delay)
        return delay

    def _post_ops(self, what: str, body: dict[str, Any] | None) -> requests.Response | None:
        url = f"{self.base}/api/dispensers/{quote(self.cfg.id, safe='')}/{what}"
        try:
            resp = self._post(url, json.dumps(body or {}).encode())
        except requests.RequestException as exc:
            log.warning("%s failed dispenser=%s error=%s", what, self.cfg.id, type(exc).__name__)
            return None
        level = logging.DEBUG if resp.ok else logging.ERROR
        log.log(level, "%s dispenser=%s status=%d", what, self.cfg.id, resp.status_code)
        return resp

    def _heartbeat(self) -> None:
        self._post_ops("heartbeat", {"backlog": self.spool.backlog(), "version": __version__,
                                     "missed": self.spool.counter("missed")})

    def _refill(self) -> None:
        resp = self._post_ops("refill", None)
        status = None if resp is None else resp.status_code
        if status is not None and 200 <= status < 300:
            self.spool.set_counter("refill_pending", 0)
            log.info("refill dispenser=%s reported=yes", self.cfg.id)
        elif status is None or status >= 500 or status == 429:
            wait = None if resp is None else retry_after(resp)
            delay = self._backoff("refill", 0) if wait is None else wait
            self._retry_at = max(self._retry_at, time.monotonic() + delay)
        else:
            self.spool.set_counter("refill_pending", 0)  # refused for good (wrong id or token): do not loop


def _json_or_empty(resp: requests.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

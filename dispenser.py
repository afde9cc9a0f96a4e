"""The Raspberry Pi side: an IR sensor, a servo, a local spool and a sender to the usage server.

`python dispenser.py --config config.toml` on a Pi; `--simulate` anywhere (gpiozero mock pins).
Standard library, gpiozero and requests only: a dispenser-only Pi never installs Flask.
"""

import argparse
import collections
import json
import logging
import math
import random
import signal
import sqlite3
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from gpiozero import AngularServo, Button, DigitalInputDevice

__version__ = "1.0.0"

log = logging.getLogger("dispenser")

EXIT_OK, EXIT_CONFIG, EXIT_BACKLOG = 0, 2, 3
SERVO_MIN_ANGLE, SERVO_MAX_ANGLE = -90.0, 90.0
MAX_BATCH = 1000  # the server refuses larger arrays
CLOCK_SANE_AFTER = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


class ConfigError(ValueError):
    """The `[dispenser]` table is missing, has an unknown key or a wrong value."""


@dataclass(frozen=True)
class Config:
    """The `[dispenser]` table of config.toml; only the first seven keys are required."""

    id: str
    server_url: str
    token: str
    sensor_pin: int
    servo_pin: int
    dose_ml: float
    spool: Path
    sensor_active_low: bool = True  # most IR obstacle modules pull OUT low when a hand is there
    bounce_s: float = 0.05
    rest_angle: float = 0.0
    dispense_angle: float = 70.0
    min_pulse_width: float = 0.001
    max_pulse_width: float = 0.002
    hold_s: float = 0.6  # how long the arm stays pressed
    return_s: float = 0.4  # time for the arm to reach rest before the servo is detached
    min_interval_s: float = 2.0
    max_per_minute: int = 20
    stuck_after_s: float = 15.0
    refill_pin: int | None = None
    heartbeat_s: float = 60.0
    log_level: str = "INFO"
    batch_size: int = 100
    timeout_s: float = 5.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    auth_retry_s: float = 60.0  # a refused token is a config problem: retry slowly, not in a burst
    shutdown_flush_s: float = 3.0
    simulate_mean_interval_s: float = 20.0


REQUIRED = ("id", "server_url", "token", "sensor_pin", "servo_pin", "dose_ml", "spool")


def _typed(name: str, value: Any, kind: Any) -> Any:
    """Check one value against its dataclass type; ints are accepted for floats."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int or kind == (int | None):
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (value is None and kind is not int)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    else:  # str and Path are both written as strings in TOML
        ok = isinstance(value, str) and value != ""
    if not ok:
        raise ConfigError(f"[dispenser] {name} has the wrong type: {value!r}")
    return value


def _validate(cfg: Config) -> None:
    """Range checks that a type alone cannot express."""
    rules = [
        (cfg.server_url.startswith(("http://", "https://")), "server_url must start with http:// or https://"),
        (len(cfg.token) >= 8, "token must be at least 8 characters"),
        (0 < cfg.dose_ml <= 1000, "dose_ml must be > 0 and <= 1000"),
        (SERVO_MIN_ANGLE <= cfg.rest_angle <= SERVO_MAX_ANGLE, "rest_angle must be from -90 to 90"),
        (SERVO_MIN_ANGLE <= cfg.dispense_angle <= SERVO_MAX_ANGLE, "dispense_angle must be from -90 to 90"),
        (0 < cfg.min_pulse_width < cfg.max_pulse_width < 0.02, "need 0 < min_pulse_width < max_pulse_width < 0.02"),
        (1 <= cfg.batch_size <= MAX_BATCH, f"batch_size must be from 1 to {MAX_BATCH}"),
        (cfg.max_per_minute >= 1, "max_per_minute must be >= 1"),
        (cfg.log_level.upper() in logging.getLevelNamesMapping(), "log_level must be DEBUG, INFO, WARNING or ERROR"),
    ]
    positive = ("hold_s", "return_s", "stuck_after_s", "heartbeat_s", "timeout_s", "backoff_base_s", "backoff_max_s",
                "auth_retry_s", "simulate_mean_interval_s")
    rules += [(getattr(cfg, name) > 0, f"{name} must be > 0") for name in positive]
    rules += [(getattr(cfg, name) >= 0, f"{name} must be >= 0") for name in ("bounce_s", "min_interval_s",
                                                                           "shutdown_flush_s")]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"[dispenser] {message}")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and check the `[dispenser]` table; `overrides` (CLI flags) replace keys before the checks."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            table = dict(tomllib.load(fh).get("dispenser") or {})
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    table.update({k: v for k, v in (overrides or {}).items() if v is not None})
    kinds = {f.name: f.type for f in fields(Config)}
    unknown = sorted(set(table) - set(kinds))
    if unknown:
        raise ConfigError(f"[dispenser]: unknown key(s) {unknown} (allowed: {', '.join(kinds)})")
    missing = [k for k in REQUIRED if k not in table]
    if missing:
        raise ConfigError(f"[dispenser]: missing required key(s) {missing}")
    values = {name: _typed(name, value, kinds[name]) for name, value in table.items()}
    spool = Path(values["spool"])
    values["spool"] = spool if spool.is_absolute() else path.resolve().parent / spool
    cfg = Config(**values)
    _validate(cfg)
    return cfg


class TokenFilter(logging.Filter):
    """Replace every secret in a log record by `***`, whoever logged it (requests, urllib3, us)."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the formatted message (and the traceback) in place; never drop the record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self.secrets:
            message = message.replace(secret, "***")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, "***")
        record.msg, record.args = message, None
        return True


def setup_logging(level: str, secrets: list[str], stream: Any = None) -> logging.Handler:
    """One key=value line per record on stderr, with every secret redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(TokenFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler


def new_event(dose_ml: float, now: float | None = None) -> dict[str, Any]:
    """One dose as the server wants it: a fresh uuid4 makes retries idempotent."""
    now = time.time() if now is None else now
    event: dict[str, Any] = {"event_id": str(uuid.uuid4()), "gel_used": dose_ml, "hands_detected": 1}
    # A Pi has no RTC: before NTP syncs its clock may say 1970, which the server would refuse (400, quarantine).
    # Without a timestamp the server stamps the event on receipt, which is closer to the truth.
    if now >= CLOCK_SANE_AFTER:
        event["timestamp"] = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return event


class Spool:
    """Events not yet delivered, in SQLite (WAL, synchronous=FULL): they survive restarts and power cuts."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the stroke and sender threads, serialized by a lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
                                               body TEXT NOT NULL, created_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS quarantine (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, body TEXT NOT NULL,
                                                   status INTEGER, error TEXT, at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        """)

    def add(self, event: dict[str, Any]) -> None:
        """Store one event, committed to disk before this returns."""
        with self._lock:
            self._db.execute("INSERT INTO events (event_id, body, created_at) VALUES (?, ?, ?)",
                             (event["event_id"], json.dumps(event, separators=(",", ":")), time.time()))

    def pending(self, limit: int) -> list[tuple[int, str, str]]:
        """The oldest `limit` events as (seq, event_id, JSON text)."""
        with self._lock:
            return self._db.execute("SELECT seq, event_id, body FROM events ORDER BY seq LIMIT ?", (limit,)).fetchall()

    def delete(self, seqs: list[int]) -> None:
        """Forget events the server acknowledged."""
        with self._lock:
            self._db.executemany("DELETE FROM events WHERE seq = ?", [(s,) for s in seqs])

    def quarantine(self, rows: list[tuple[int, str, str]], status: int, error: str) -> None:
        """Move events the server will never accept aside: kept for a human, never retried."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO quarantine (seq, event_id, body, status, error, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(seq, event_id, body, status, error[:500], time.time()) for seq, event_id, body in rows])
            self._db.executemany("DELETE FROM events WHERE seq = ?", [(seq,) for seq, _, _ in rows])

    def quarantined(self) -> list[tuple[str, str, int, str]]:
        """Quarantined events as (event_id, JSON text, HTTP status, error)."""
        with self._lock:
            return self._db.execute("SELECT event_id, body, status, error FROM quarantine ORDER BY seq").fetchall()

    def backlog(self) -> int:
        """How many events wait for delivery."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM events").fetchone()[0]

    def counter(self, key: str) -> int:
        """A persisted counter (`missed`, `refill_pending`)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    def bump(self, key: str, by: int = 1) -> int:
        """Add `by` to a persisted counter and return the new value."""
        with self._lock:
            self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (key, by))
            return self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

    def set_counter(self, key: str, value: int) -> None:
        """Set a persisted counter."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Close the database (everything is already committed)."""
        with self._lock:
            self._db.close()


class Sender:
    """Background thread: delivers the spool in batches, sends heartbeats and refills; never blocks a dose."""

    def __init__(self, cfg: Config, spool: Spool):
        self.cfg, self.spool = cfg, spool
        self.base = cfg.server_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {cfg.token}", "Content-Type": "application/json",
                                  "User-Agent": f"gel-dispenser/{__version__}"})
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._progress = threading.Condition()  # notified after each delivery round, for wait_empty()
        self._failures = 0
        self._retry_at = 0.0
        self._next_heartbeat = 0.0  # the first heartbeat goes out at start, so the dashboard sees us at once
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)

    def start(self) -> "Sender":
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

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before reading the spool, so an event added meanwhile wakes us again
            try:
                if time.monotonic() >= self._retry_at:
                    self._deliver()
                    if self.spool.counter("refill_pending"):
                        self._refill()
                if time.monotonic() >= self._next_heartbeat:
                    self._next_heartbeat = time.monotonic() + self.cfg.heartbeat_s
                    self._heartbeat()
            except Exception:  # anything unexpected: keep the thread alive and retry later
                log.exception("sender error dispenser=%s", self.cfg.id)
                self._retry_at = time.monotonic() + self._backoff("sender error", 0)
            with self._progress:
                self._progress.notify_all()
            until = self._next_heartbeat
            if self.spool.backlog() or self.spool.counter("refill_pending"):
                until = min(until, self._retry_at)
            self._wake.wait(max(0.0, until - time.monotonic()))

    def _deliver(self) -> None:
        while not self._stopping.is_set():
            rows = self.spool.pending(self.cfg.batch_size)
            if not rows:
                return
            retry_in = self._send(rows)
            if retry_in is not None:
                self._retry_at = time.monotonic() + retry_in
                return

    def _send(self, rows: list[tuple[int, str, str]]) -> float | None:
        """POST one batch; None when done with it (delivered or quarantined), else seconds before a retry."""
        body = ("[" + ",".join(text for _, _, text in rows) + "]").encode()
        try:
            resp = self.http.post(self.base + "/mettre_a_jour_donnees", data=body, timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            return self._backoff(f"network error={type(exc).__name__}", len(rows))
        status = resp.status_code
        if 200 <= status < 300:
            self.spool.delete([seq for seq, _, _ in rows])
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
        error = str(_json_or_empty(resp).get("error", resp.text[:200]))
        if status in (400, 413):
            self.spool.quarantine(rows, status, error)
            log.error("quarantined dispenser=%s event_id=%s status=%d error=%r", self.cfg.id, rows[0][1], status, error)
            return None
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

    def _post_ops(self, what: str, body: dict[str, Any] | None) -> int | None:
        url = f"{self.base}/api/dispensers/{quote(self.cfg.id, safe='')}/{what}"
        try:
            resp = self.http.post(url, data=json.dumps(body or {}).encode(), timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            log.warning("%s failed dispenser=%s error=%s", what, self.cfg.id, type(exc).__name__)
            return None
        level = logging.DEBUG if resp.ok else logging.ERROR
        log.log(level, "%s dispenser=%s status=%d", what, self.cfg.id, resp.status_code)
        return resp.status_code

    def _heartbeat(self) -> None:
        self._post_ops("heartbeat", {"backlog": self.spool.backlog(), "version": __version__,
                                     "missed": self.spool.counter("missed")})

    def _refill(self) -> None:
        status = self._post_ops("refill", None)
        if status is not None and 200 <= status < 300:
            self.spool.set_counter("refill_pending", 0)
            log.info("refill dispenser=%s reported=yes", self.cfg.id)
        elif status is None or status >= 500:
            self._retry_at = max(self._retry_at, time.monotonic() + self._backoff("refill", 0))
        else:
            self.spool.set_counter("refill_pending", 0)  # refused for good (wrong id or token): do not loop


def _json_or_empty(resp: requests.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class Dispenser:
    """The sensor and the servo: one stroke per hand presence, each dose spooled before the sender is woken."""

    def __init__(self, cfg: Config, spool: Spool, wake: Callable[[], None] = lambda: None,
                 refill: Callable[[], None] = lambda: None, pin_factory: Any = None,
                 servo_log_level: int = logging.DEBUG):
        self.cfg, self.spool, self._wake_sender = cfg, spool, wake
        self._servo_log_level = servo_log_level
        self._cv = threading.Condition()
        self._halt = threading.Event()  # cuts a hold short on shutdown
        self._stopping = False
        self._present = False
        self._since = 0.0
        self._stuck = False
        self._pending = False  # a dose was granted, the worker has not started it yet
        self.busy = False  # a stroke is running
        self._new_misses: list[str] = []
        self._last_dose = -math.inf
        self._recent: collections.deque[float] = collections.deque()  # dose times in the last minute
        self.doses = 0
        self.servo = AngularServo(cfg.servo_pin, initial_angle=None, min_angle=SERVO_MIN_ANGLE,
                                  max_angle=SERVO_MAX_ANGLE, min_pulse_width=cfg.min_pulse_width,
                                  max_pulse_width=cfg.max_pulse_width, pin_factory=pin_factory)
        self.sensor = DigitalInputDevice(cfg.sensor_pin, pull_up=cfg.sensor_active_low,
                                         bounce_time=cfg.bounce_s or None, pin_factory=pin_factory)
        self.refill_button = None
        if cfg.refill_pin is not None:
            self.refill_button = Button(cfg.refill_pin, pull_up=True, bounce_time=0.05, pin_factory=pin_factory)
            self.refill_button.when_pressed = lambda: self._refill_pressed(refill)
        if self.sensor.is_active:  # already covered at start: no dose until it clears once
            self._present, self._since = True, time.monotonic()
        self._worker = threading.Thread(target=self._run, name="stroke", daemon=True)
        self._worker.start()
        self.sensor.when_activated = self._hand_arrived
        self.sensor.when_deactivated = self._hand_left

    def _refill_pressed(self, refill: Callable[[], None]) -> None:
        log.info("refill button dispenser=%s", self.cfg.id)
        refill()

    def _hand_arrived(self) -> None:
        """gpiozero callback: decide at once, never block (the stroke runs in the worker thread)."""
        with self._cv:
            if self._present or self._stopping:
                return
            now = time.monotonic()
            self._present, self._since, self._stuck = True, now, False
            reason = self._refusal(now)
            if reason:
                self._new_misses.append(reason)
            else:
                self._pending, self._last_dose = True, now
                self._recent.append(now)
            self._cv.notify_all()

    def _hand_left(self) -> None:
        with self._cv:
            if self._stuck:
                log.info("sensor cleared dispenser=%s stuck_for=%.1fs", self.cfg.id, time.monotonic() - self._since)
            self._present = self._stuck = False
            self._cv.notify_all()

    def _refusal(self, now: float) -> str | None:
        """Why a new presence gets no dose right now, or None."""
        if self._pending or self.busy:
            return "busy"
        if now - self._last_dose < self.cfg.min_interval_s:
            return "cooldown"
        while self._recent and now - self._recent[0] >= 60:
            self._recent.popleft()
        if len(self._recent) >= self.cfg.max_per_minute:
            return "rate_cap"
        return None

    def ready_in(self) -> float:
        """Seconds before a new presence would be granted a dose (0 when it would be now)."""
        with self._cv:
            now = time.monotonic()
            wait = self._last_dose + self.cfg.min_interval_s - now
            recent = [t for t in self._recent if now - t < 60]
            if len(recent) >= self.cfg.max_per_minute:
                wait = max(wait, recent[-self.cfg.max_per_minute] + 60 - now)
            return max(0.0, wait)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait (no polling) until `condition()` holds; it is evaluated under the dispenser's lock."""
        with self._cv:
            return self._cv.wait_for(condition, timeout)

    def _run(self) -> None:
        self._move(self.cfg.rest_angle)  # park: the arm may have been left anywhere
        self._settle_and_detach()
        while True:
            with self._cv:
                stuck = False
                while not (self._stopping or self._pending or self._new_misses):
                    now = time.monotonic()
                    deadline = self._since + self.cfg.stuck_after_s if self._present and not self._stuck else None
                    if deadline is not None and now >= deadline:
                        self._stuck = stuck = True
                        self._new_misses.append("stuck_sensor")
                        break
                    # A timed wait only while a hand is there (stuck detection); otherwise sleep until a callback.
                    self._cv.wait(None if deadline is None else deadline - now)
                if self._stopping:
                    return
                dose, misses = self._pending, self._new_misses
                self._pending, self._new_misses, self.busy = False, [], dose
            if stuck:
                log.warning("sensor stuck dispenser=%s active_for=%.1fs action='no more doses until it clears'",
                            self.cfg.id, self.cfg.stuck_after_s)
            try:
                if misses:
                    total = self.spool.bump("missed", len(misses))
                    for reason in misses:
                        log.info("missed dispenser=%s reason=%s missed_total=%d", self.cfg.id, reason, total)
                if dose:
                    self._stroke()
            except Exception:  # a full or broken SD card must not stop the dispenser from dispensing
                log.exception("stroke failed dispenser=%s", self.cfg.id)

    def _stroke(self) -> None:
        try:
            self._move(self.cfg.dispense_angle)
            event = new_event(self.cfg.dose_ml)
            self.spool.add(event)  # on disk before the sender hears of it
            self._wake_sender()
            log.info("dose dispenser=%s event_id=%s gel_used=%s backlog=%d", self.cfg.id, event["event_id"],
                     event["gel_used"], self.spool.backlog())
            self._halt.wait(self.cfg.hold_s)
        finally:
            self._move(self.cfg.rest_angle)
            self._settle_and_detach()
            with self._cv:
                self.busy = False
                self.doses += 1
                self._cv.notify_all()

    def _move(self, angle: float) -> None:
        log.log(self._servo_log_level, "servo dispenser=%s angle=%s", self.cfg.id, angle)
        self.servo.angle = angle

    def _settle_and_detach(self) -> None:
        time.sleep(self.cfg.return_s)  # not polling: the arm needs this long to get back before power is cut
        self.servo.detach()  # no pulses: no jitter, no idle current
        log.log(self._servo_log_level, "servo dispenser=%s detached", self.cfg.id)

    def close(self) -> None:
        """Finish any stroke, park the servo at rest, release every pin."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._halt.set()
        self._worker.join(self.cfg.hold_s + self.cfg.return_s + 2)
        if self.servo.value is not None:
            self._move(self.cfg.rest_angle)
            self._settle_and_detach()
        log.info("stopped dispenser=%s servo=rest doses=%d", self.cfg.id, self.doses)
        for device in (self.sensor, self.refill_button, self.servo):
            if device is not None:
                device.close()


class Simulator:
    """Simulated hands on the mock sensor pin: random arrivals, or exactly N presences."""

    def __init__(self, dispenser: Dispenser, stop: threading.Event):
        self.dispenser, self.stop = dispenser, stop
        self.pin = dispenser.sensor.pin

    def hand(self, present: bool) -> None:
        """Drive the mock sensor pin as a hand would (mind active-low modules)."""
        if present == self.dispenser.cfg.sensor_active_low:
            self.pin.drive_low()
        else:
            self.pin.drive_high()

    def presences(self, count: int) -> int:
        """Exactly `count` presences back to back, each waiting out the cooldown so it gives a dose."""
        d = self.dispenser
        for _ in range(count):
            d.wait_until(lambda: not d.busy or self.stop.is_set(), d.cfg.hold_s + d.cfg.return_s + 30)
            if self.stop.wait(d.ready_in()):
                break
            before = d.doses
            self.hand(True)
            d.wait_until(lambda before=before: d.doses > before or self.stop.is_set(), d.cfg.hold_s + 30)
            self.hand(False)
            if self.stop.is_set():
                break
        return d.doses

    def random_hands(self, mean_interval_s: float) -> None:
        """Hands arriving at random (exponential inter-arrival), held 0.3 to 1.5 s, until stopped."""
        log.info("simulate dispenser=%s mean_interval=%.1fs", self.dispenser.cfg.id, mean_interval_s)
        while not self.stop.wait(min(random.expovariate(1 / mean_interval_s), threading.TIMEOUT_MAX)):
            self.hand(True)
            self.stop.wait(random.uniform(0.3, 1.5))
            self.hand(False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="dispenser.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.toml", help="config.toml with a [dispenser] table")
    parser.add_argument("--simulate", action="store_true", help="mock pins and simulated hands, no hardware")
    parser.add_argument("--hands", type=int, metavar="N", help="with --simulate: exactly N presences, then exit")
    parser.add_argument("--mean-interval", type=float, metavar="S", help="simulated hands: mean seconds between")
    parser.add_argument("--flush", action="store_true", help="deliver the spool and exit")
    parser.add_argument("--flush-timeout", type=float, default=10.0, metavar="S",
                        help="--hands/--flush: seconds allowed for delivery (default 10)")
    parser.add_argument("--version", action="version", version=__version__)
    for key in ("id", "token", "server-url", "spool"):
        parser.add_argument(f"--{key}", help=f"override [dispenser] {key.replace('-', '_')}")
    args = parser.parse_args(argv)
    if args.hands is not None and not args.simulate:
        parser.error("--hands needs --simulate")
    if args.hands is not None and args.hands < 0:
        parser.error("--hands must be >= 0")
    return args


def _deliver_and_exit(sender: Sender, spool: Spool, timeout: float) -> int:
    delivered = sender.wait_empty(timeout)
    left = spool.backlog()
    log.log(logging.INFO if delivered else logging.ERROR, "flush dispenser=%s delivered=%s backlog=%d",
            sender.cfg.id, "yes" if delivered else "no", left)
    return EXIT_OK if left == 0 else EXIT_BACKLOG


def main(argv: list[str] | None = None) -> int:
    """Run the dispenser until SIGTERM/SIGINT; return the exit code (0 ok, 2 config, 3 events left)."""
    args = parse_args(argv)
    overrides = {"id": args.id, "token": args.token, "server_url": args.server_url, "spool": args.spool}
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(cfg.log_level, [cfg.token])
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    spool = Spool(cfg.spool)
    sender = Sender(cfg, spool).start()
    log.info("start dispenser=%s version=%s server=%s backlog=%d simulate=%s", cfg.id, __version__, cfg.server_url,
             spool.backlog(), args.simulate)
    code = EXIT_OK
    if args.flush:
        code = _deliver_and_exit(sender, spool, args.flush_timeout)
    else:
        pin_factory = None
        if args.simulate:
            from gpiozero.pins.mock import MockFactory, MockPWMPin

            pin_factory = MockFactory(pin_class=MockPWMPin)
        try:
            dispenser = Dispenser(cfg, spool, wake=sender.wake, refill=sender.request_refill,
                                  pin_factory=pin_factory,
                                  servo_log_level=logging.INFO if args.simulate else logging.DEBUG)
        except Exception as exc:  # gpiozero raises many kinds; none is recoverable here
            log.error("gpio dispenser=%s error=%r hint='not a Raspberry Pi? try --simulate'", cfg.id, exc)
            sender.stop()
            return EXIT_CONFIG
        try:
            if args.hands is not None:
                Simulator(dispenser, stop).presences(args.hands)
            elif args.simulate:
                mean = args.mean_interval or cfg.simulate_mean_interval_s
                threading.Thread(target=Simulator(dispenser, stop).random_hands, args=(mean,), daemon=True).start()
                stop.wait()
            else:
                stop.wait()
        finally:
            dispenser.close()
        if args.hands is not None:
            code = _deliver_and_exit(sender, spool, args.flush_timeout)
    stopped = sender.stop(0 if args.flush or args.hands is not None else cfg.shutdown_flush_s)
    log.info("exit dispenser=%s code=%d backlog=%d", cfg.id, code, spool.backlog())
    if stopped:  # a request hanging past its timeout still holds the connection: exit without closing it
        spool.close()
    return code


if __name__ == "__main__":
    sys.exit(main())

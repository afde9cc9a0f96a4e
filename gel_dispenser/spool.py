"""The local spool: doses not yet delivered, in SQLite, with the clock readings that date them."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

CLOCK_SANE_AFTER = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def read_boot_id(path: Path = BOOT_ID_FILE) -> str:
    """This boot's id: monotonic readings compare only within one boot. A per-process id where there is none."""
    try:
        return path.read_text().strip() or f"process-{uuid.uuid4()}"
    except OSError:
        return f"process-{uuid.uuid4()}"


BOOT_ID = read_boot_id()


def new_event(dose_ml: float, now: float | None = None) -> dict[str, Any]:
    """One dose as the server wants it: a fresh uuid4 makes retries idempotent."""
    return _dated({"gel_used": dose_ml, "hands_detected": 1}, now)


def new_entries_event(entries: int, now: float | None = None) -> dict[str, Any]:
    """Passages into the room through the door (an increment), dated and identified like a dose."""
    return _dated({"entries": entries}, now)


def _dated(fields: dict[str, Any], now: float | None) -> dict[str, Any]:
    now = time.time() if now is None else now
    event: dict[str, Any] = {"event_id": str(uuid.uuid4()), **fields}
    # A Pi has no RTC: before NTP syncs its clock may say 1970, which the server would refuse (400, quarantine).
    # Without a timestamp the server dates the event from its age_s, or on receipt.
    if now >= CLOCK_SANE_AFTER:
        event["timestamp"] = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return event


class Pending(NamedTuple):
    """One spooled event: its JSON text, and the monotonic reading and boot id of the dose (None in old spools)."""

    seq: int
    event_id: str
    body: str
    monotonic: float | None
    boot: str | None


SCHEMA = """
    CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
                                       body TEXT NOT NULL, created_at REAL NOT NULL, monotonic REAL, boot TEXT);
    CREATE TABLE IF NOT EXISTS quarantine (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, body TEXT NOT NULL,
                                           status INTEGER, error TEXT, at REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# The statements, named once. (Out of function bodies, so `make mutate` leaves their text alone: SQLite reads
# keywords and names in any case, and a mutant that changed their case would be the same statement.)
DURABLE = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL")
EVENT_COLUMNS = "PRAGMA table_info(events)"
INSERT_EVENT = "INSERT INTO events (event_id, body, created_at, monotonic, boot) VALUES (?, ?, ?, ?, ?)"
OLDEST = "SELECT seq, event_id, body, monotonic, boot FROM events ORDER BY seq LIMIT ?"
DELETE_EVENT = "DELETE FROM events WHERE seq = ?"
QUARANTINE = "INSERT OR REPLACE INTO quarantine (seq, event_id, body, status, error, at) VALUES (?, ?, ?, ?, ?, ?)"
QUARANTINED = "SELECT event_id, body, status, error FROM quarantine ORDER BY seq"
BACKLOG = "SELECT count(*) FROM events"
COUNTER = "SELECT value FROM meta WHERE key = ?"
BUMP = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = value + excluded.value"
SET_COUNTER = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"


class Spool:
    """Events not yet delivered, in SQLite (WAL, synchronous=FULL): they survive restarts and power cuts."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the stroke and sender threads, serialized by a lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        try:
            for pragma in DURABLE:
                self._db.execute(pragma)
            self._db.executescript(SCHEMA)
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Spools written before doses carried their clock readings: their rows keep NULL (sent without age_s)."""
        columns = {row[1] for row in self._db.execute(EVENT_COLUMNS)}
        for name, kind in (("monotonic", "REAL"), ("boot", "TEXT")):
            if name not in columns:
                self._db.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")

    def add(self, event: dict[str, Any], monotonic: float | None = None, boot: str | None = None) -> None:
        """Store one event with the dose's clock readings, committed to disk before this returns."""
        with self._lock:
            self._db.execute(INSERT_EVENT, (event["event_id"], json.dumps(event, separators=(",", ":")), time.time(),
                                            monotonic, boot))

    def due(self, limit: int) -> list[Pending]:
        """The oldest `limit` events with their clock readings."""
        with self._lock:
            rows = self._db.execute(OLDEST, (limit,)).fetchall()
        return [Pending(*row) for row in rows]

    def pending(self, limit: int) -> list[tuple[int, str, str]]:
        """The oldest `limit` events as (seq, event_id, JSON text)."""
        return [(row.seq, row.event_id, row.body) for row in self.due(limit)]

    def delete(self, seqs: list[int]) -> None:
        """Forget events the server acknowledged."""
        with self._lock:
            self._db.executemany(DELETE_EVENT, [(s,) for s in seqs])

    def quarantine(self, rows: list[Pending], status: int, error: str) -> None:
        """Move events the server will never accept aside: kept for a human, never retried."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(QUARANTINE, [(row.seq, row.event_id, row.body, status, error[:500], time.time())
                                              for row in rows])
            self._db.executemany(DELETE_EVENT, [(row.seq,) for row in rows])

    def quarantined(self) -> list[tuple[str, str, int, str]]:
        """Quarantined events as (event_id, JSON text, HTTP status, error)."""
        with self._lock:
            return self._db.execute(QUARANTINED).fetchall()

    def backlog(self) -> int:
        """How many events wait for delivery."""
        with self._lock:
            return self._db.execute(BACKLOG).fetchone()[0]

    def counter(self, key: str) -> int:
        """A persisted counter (`missed`, `refill_pending`)."""
        with self._lock:
            row = self._db.execute(COUNTER, (key,)).fetchone()
        return row[0] if row else 0

    def bump(self, key: str, by: int = 1) -> int:
        """Add `by` to a persisted counter and return the new value."""
        with self._lock:
            self._db.execute(BUMP, (key, by))
            return self._db.execute(COUNTER, (key,)).fetchone()[0]

    def set_counter(self, key: str, value: int) -> None:
        """Set a persisted counter."""
        with self._lock:
            self._db.execute(SET_COUNTER, (key, value))

    def close(self) -> None:
        """Close the database (everything is already committed)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Whether the database takes writes: a full disk or a read-only file is named, answered 503, logged once."""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

log = logging.getLogger(__name__)

# What SQLite and PostgreSQL say when the storage, not the request, is the problem.
REFUSALS = (
    ("database or disk is full", "disk full"),
    ("no space left on device", "disk full"),
    ("could not extend file", "disk full"),
    ("readonly database", "database file is read-only"),
    ("read-only transaction", "database is read-only"),
    ("disk i/o error", "disk I/O error"),
)


class WritesRefused(RuntimeError):
    """The database refuses writes for a reason of its storage (the request itself was fine)."""

    def __init__(self, reason: str):
        super().__init__(f"the database refuses writes: {reason}")
        self.reason = reason


def refusal(exc: BaseException) -> str | None:
    """The storage reason behind a database error, or None when it is something else."""
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InternalError | sa.exc.ProgrammingError):
        return None
    text = str(exc.orig if getattr(exc, "orig", None) is not None else exc).lower()
    return next((reason for needle, reason in REFUSALS if needle in text), None)


class WriteHealth:
    """The current streak of refused writes, if any: logged when it starts and when it ends, not per request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reason: str | None = None
        self.refused_count = 0

    def refused(self, reason: str) -> None:
        """A write was refused for `reason`."""
        with self.lock:
            starts, self.reason = self.reason != reason, reason
            self.refused_count += 1
        if starts:
            log.error("the database refuses writes: %s (answered 503 until a write succeeds again)", reason)

    def accepted(self) -> None:
        """A write went through: a streak of refusals, if any, is over."""
        if self.reason is None:
            return
        with self.lock:
            reason, count, self.reason, self.refused_count = self.reason, self.refused_count, None, 0
        if reason is not None:
            log.warning("the database takes writes again after %d refused (%s)", count, reason)

"""A sensor held active too long (a stuck hand sensor, a blocked door beam): noticed once, without polling."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("dispenser")


class StuckGuard:
    """One input's presence: since when it is active, and whether that has lasted too long (reported once)."""

    def __init__(self, name: str, after_s: float, action: str):
        self.name, self.after_s, self.action = name, after_s, action
        self.active = False
        self.since = 0.0
        self.stuck = False

    def arrive(self, now: float) -> bool:
        """The input went active; False when it already was (a repeated edge, nothing new)."""
        if self.active:
            return False
        self.active, self.since, self.stuck = True, now, False
        return True

    def leave(self, now: float, dispenser_id: str) -> None:
        """The input cleared: it counts again; a stuck one says so."""
        if self.stuck:
            log.info("%s cleared dispenser=%s stuck_for=%.1fs", self.name, dispenser_id, now - self.since)
        self.active = self.stuck = False

    def deadline(self) -> float | None:
        """When the input, still active, becomes stuck; None when it is not active or already stuck."""
        return self.since + self.after_s if self.active and not self.stuck else None

    def expire(self, now: float) -> bool:
        """True once, at the first call after the deadline: the caller reports it (outside its lock)."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        self.stuck = True
        return True

    def warn(self, dispenser_id: str) -> None:
        """The one warning of a stuck input."""
        log.warning("%s stuck dispenser=%s active_for=%.1fs action=%r", self.name, dispenser_id, self.after_s,
                    self.action)


def sleep_until(cv: threading.Condition, ready: Callable[[], bool], guards: list[StuckGuard],
                monotonic: Callable[[], float]) -> list[StuckGuard]:
    """Under `cv`: sleep until `ready()` or until a guarded input gets stuck; the guards that just did (or [])."""
    while not ready():
        now = monotonic()
        expired = [guard for guard in guards if guard.expire(now)]
        if expired:
            return expired
        deadlines = [d for guard in guards if (d := guard.deadline()) is not None]
        # A timed wait only while an input is active (stuck detection); otherwise sleep until a callback notifies.
        cv.wait(min(deadlines) - now if deadlines else None)
    return []

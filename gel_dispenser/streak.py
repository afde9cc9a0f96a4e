"""Failures in a row on one channel (delivery, heartbeat, refill): each reason is logged once per streak."""

from __future__ import annotations

import logging


class Streak:
    """Counts failed attempts; the first of each reason in a streak is worth a log line, the rest go to DEBUG."""

    def __init__(self) -> None:
        self.attempts = 0
        self._logged: set[str] = set()

    def failed(self, reason: str, level: int = logging.WARNING) -> int:
        """One more failed attempt: the log level it deserves."""
        self.attempts += 1
        if reason in self._logged:
            return logging.DEBUG
        self._logged.add(reason)
        return level

    def ended(self) -> int:
        """A success: the failed attempts it ends (0 when there was no streak)."""
        attempts, self.attempts = self.attempts, 0
        self._logged.clear()
        return attempts

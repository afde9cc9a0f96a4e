"""The door counter: one beam counts passages, two beams tell coming in from going out; entries are spooled."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice

from gel_dispenser.config import Config
from gel_dispenser.guard import StuckGuard, sleep_until
from gel_dispenser.spool import BOOT_ID, Spool, new_entries_event

log = logging.getLogger("dispenser")

OUTER, INNER = 0, 1  # entry_pin, exit_pin: coming in breaks the outer beam first, going out the inner one


class EntryCounter:
    """The beams at the door; each entry is decided in the gpiozero callback and spooled by a worker thread.

    One beam: every passage is an entry. Two beams: the outer then the inner within `entry_window_s` is an entry,
    the inner then the outer an exit; exits are counted and logged, only entries are sent (the rate's denominator).
    """

    def __init__(self, cfg: Config, spool: Spool, wake: Callable[[], None] = lambda: None, pin_factory: Any = None,
                 clock: Callable[[], float] = time.time, boot: str = BOOT_ID,
                 monotonic: Callable[[], float] = time.monotonic):
        self.cfg, self.spool, self._wake_sender = cfg, spool, wake
        self.clock, self.boot, self.monotonic = clock, boot, monotonic
        self._cv = threading.Condition()
        self._stopping = False
        pins = [cfg.entry_pin] if cfg.exit_pin is None else [cfg.entry_pin, cfg.exit_pin]
        names = ["entry beam"] if len(pins) == 1 else ["outer beam", "inner beam"]
        self._guards = [StuckGuard(name, cfg.entry_stuck_after_s, "no passages counted until it clears")
                        for name in names]
        self._cleared = [-math.inf] * len(pins)  # when each beam last cleared (debounce)
        self._first: list[float | None] = [None] * len(pins)  # two beams: a break still waiting for the other one
        self._pending: list[tuple[float, float]] = []  # entries decided, not spooled yet: (wall clock, monotonic)
        self.entered = self.exited = self.spooled = 0
        self.beams: list[DigitalInputDevice] = []
        try:
            for pin in pins:
                self.beams.append(DigitalInputDevice(pin, pull_up=cfg.entry_active_low, pin_factory=pin_factory))
        except BaseException:
            self._close_beams()  # the outer beam's pin must not stay claimed when the inner one fails
            raise
        for beam, guard in zip(self.beams, self._guards, strict=True):
            if beam.is_active:  # blocked at start: not a passage
                guard.arrive(self.monotonic())
        self._worker = threading.Thread(target=self._run, name="entries", daemon=True)
        self._worker.start()
        for index, beam in enumerate(self.beams):
            beam.when_activated = lambda index=index: self._broken(index)
            beam.when_deactivated = lambda index=index: self._cleared_beam(index)

    def __enter__(self) -> EntryCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _broken(self, index: int) -> None:
        """gpiozero callback: decide at once, never block (the spool is written by the worker)."""
        with self._cv:
            now = self.monotonic()
            if self._stopping or not self._guards[index].arrive(now):
                return
            self._cv.notify_all()  # the worker times this break from now (stuck beam)
            if now - self._cleared[index] < self.cfg.entry_debounce_s or any(g.stuck for g in self._guards):
                return  # the same passage still (an arm, a bag), or a blocked beam: direction unknown
            if len(self.beams) == 1:
                self._entered(now)
                return
            other = 1 - index
            first = self._first[other]
            if first is None or now - first > self.cfg.entry_window_s:
                self._first[index] = now
                return
            self._first = [None, None]
            if other == OUTER:
                self._entered(now)
            else:
                self.exited += 1
                log.info("exit dispenser=%s exits=%d", self.cfg.id, self.exited)

    def _entered(self, now: float) -> None:
        self.entered += 1
        self._pending.append((self.clock(), now))

    def _cleared_beam(self, index: int) -> None:
        with self._cv:
            now = self.monotonic()
            self._guards[index].leave(now, self.cfg.id)
            self._cleared[index] = now
            self._cv.notify_all()

    def ready_in(self) -> float:
        """Seconds before a new break of every beam would count as a new passage (0 when it would be now)."""
        with self._cv:
            return max(0.0, max(self._cleared) + self.cfg.entry_debounce_s - self.monotonic())

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait (no polling) until `condition()` holds; it is evaluated under the counter's lock."""
        with self._cv:
            return self._cv.wait_for(condition, timeout)

    def _run(self) -> None:
        """Spool what the callbacks decided; wake only for that, or when a beam has been broken too long."""
        stopping = False
        while not stopping:
            with self._cv:
                stuck = sleep_until(self._cv, lambda: self._stopping or bool(self._pending), self._guards,
                                    self.monotonic)
                batch, self._pending, stopping = self._pending, [], self._stopping
            for guard in stuck:
                guard.warn(self.cfg.id)
            if batch:
                self._spool(batch)

    def _spool(self, batch: list[tuple[float, float]]) -> None:
        """One event for the entries decided since the last write: one event_id, so exactly once all the same."""
        wall, monotonic = batch[0]
        event = new_entries_event(len(batch), now=wall)
        try:
            self.spool.add(event, monotonic, self.boot)  # on disk before the sender hears of it
        except Exception:  # a full or broken SD card must not stop the counting
            log.exception("entries lost dispenser=%s entries=%d", self.cfg.id, len(batch))
            return
        self._wake_sender()
        with self._cv:
            self.spooled += len(batch)
            self._cv.notify_all()
        log.info("entry dispenser=%s event_id=%s entries=%d backlog=%d", self.cfg.id, event["event_id"], len(batch),
                 self.spool.backlog())

    @property
    def closed(self) -> bool:
        """True once close() has released the pins."""
        return not self.beams

    def close(self) -> None:
        """Spool the entries already counted, release the pins; closing twice is harmless."""
        if not self.closed:
            with self._cv:
                self._stopping = True  # the worker spools what is pending, then ends
                self._cv.notify_all()
            self._worker.join(10)
            log.info("stopped entries dispenser=%s entries=%d exits=%d", self.cfg.id, self.entered, self.exited)
            self._close_beams()

    def _close_beams(self) -> None:
        for beam in self.beams:
            beam.close()
        self.beams = []

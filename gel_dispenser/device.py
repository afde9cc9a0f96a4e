"""The sensor, the servo and the door counter, in gpiozero's manner: a failed constructor closes what it opened."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import AngularServo, Button, DigitalInputDevice

from gel_dispenser.config import SERVO_MAX_ANGLE, SERVO_MIN_ANGLE, Config
from gel_dispenser.entries import EntryCounter
from gel_dispenser.guard import StuckGuard, sleep_until
from gel_dispenser.spool import BOOT_ID, Spool, new_event

log = logging.getLogger("dispenser")


class Dispenser:
    """The sensor and the servo: one stroke per hand presence, each dose spooled before the sender is woken."""

    def __init__(self, cfg: Config, spool: Spool, wake: Callable[[], None] = lambda: None,
                 refill: Callable[[], None] = lambda: None, pin_factory: Any = None,
                 clock: Callable[[], float] = time.time, boot: str = BOOT_ID,
                 monotonic: Callable[[], float] = time.monotonic):
        self.cfg, self.spool, self._wake_sender = cfg, spool, wake
        self.clock, self.boot = clock, boot  # the wall clock dates a dose; the monotonic one measures its age
        self.monotonic = monotonic  # cooldown, rate cap and stuck sensor (a test moves it instead of sleeping)
        self._cv = threading.Condition()
        self._halt = threading.Event()  # cuts a hold short on shutdown
        self._stopping = False
        self._hand = StuckGuard("sensor", cfg.stuck_after_s, "no more doses until it clears")
        self._pending = False  # a dose was granted, the worker has not started it yet
        self.busy = False  # a stroke is running
        self._new_misses: list[str] = []
        self._last_dose = -math.inf
        self._recent: collections.deque[float] = collections.deque()  # dose times in the last minute
        self.doses = 0
        self.servo = self.sensor = self.refill_button = None
        self.entries: EntryCounter | None = None  # the door counter, when entry_pin is set
        self._worker: threading.Thread | None = None
        try:
            self._open(pin_factory, refill)
        except BaseException:
            self._close_devices()  # a pin in use or a missing GPIO chip must not leave the others claimed
            raise
        self._worker = threading.Thread(target=self._run, name="stroke", daemon=True)
        self._worker.start()
        self.sensor.when_activated = self._hand_arrived
        self.sensor.when_deactivated = self._hand_left

    def _open(self, pin_factory: Any, refill: Callable[[], None]) -> None:
        cfg = self.cfg
        self.servo = AngularServo(cfg.servo_pin, initial_angle=None, min_angle=SERVO_MIN_ANGLE,
                                  max_angle=SERVO_MAX_ANGLE, min_pulse_width=cfg.min_pulse_width,
                                  max_pulse_width=cfg.max_pulse_width, pin_factory=pin_factory)
        self.sensor = DigitalInputDevice(cfg.sensor_pin, pull_up=cfg.sensor_active_low,
                                         bounce_time=cfg.bounce_s or None, pin_factory=pin_factory)
        if cfg.refill_pin is not None:
            self.refill_button = Button(cfg.refill_pin, pull_up=True, bounce_time=0.05, pin_factory=pin_factory)
            self.refill_button.when_pressed = lambda: self._refill_pressed(refill)
        if cfg.entry_pin is not None:
            self.entries = EntryCounter(cfg, self.spool, wake=self._wake_sender, pin_factory=pin_factory,
                                        clock=self.clock, boot=self.boot, monotonic=self.monotonic)
        if self.sensor.is_active:  # already covered at start: no dose until it clears once
            self._hand.arrive(self.monotonic())

    def __enter__(self) -> Dispenser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once close() has released the pins."""
        return self.servo is None and self.sensor is None

    @property
    def idle(self) -> bool:
        """True when no stroke is running and none is granted and waiting for the worker."""
        with self._cv:
            return not (self._pending or self.busy)

    def _refill_pressed(self, refill: Callable[[], None]) -> None:
        log.info("refill button dispenser=%s", self.cfg.id)
        refill()

    def _hand_arrived(self) -> None:
        """gpiozero callback: decide at once, never block (the stroke runs in the worker thread)."""
        with self._cv:
            now = self.monotonic()
            if self._stopping or not self._hand.arrive(now):
                return
            reason = self._refusal(now)
            if reason:
                self._new_misses.append(reason)
            else:
                self._pending, self._last_dose = True, now
                self._recent.append(now)
            self._cv.notify_all()

    def _hand_left(self) -> None:
        with self._cv:
            was_stuck = self._hand.stuck
            self._hand.leave(self.monotonic(), self.cfg.id)
            self._cv.notify_all()
        if was_stuck:
            self.spool.set_counter("stuck", 0)

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
            now = self.monotonic()
            wait = self._last_dose + self.cfg.min_interval_s - now
            recent = [t for t in self._recent if now - t < 60]
            if len(recent) >= self.cfg.max_per_minute:
                wait = max(wait, recent[-self.cfg.max_per_minute] + 60 - now)
            return max(0.0, wait)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait (no polling) until `condition()` holds; it is evaluated under the dispenser's lock."""
        with self._cv:
            return self._cv.wait_for(condition, timeout)

    def _next_job(self) -> tuple[bool, list[str], bool] | None:
        """Block until there is a dose or a miss to handle: (dose, misses, stuck), or None when stopping."""
        with self._cv:
            stuck = bool(sleep_until(self._cv, lambda: self._stopping or self._pending or bool(self._new_misses),
                                     [self._hand], self.monotonic))
            if stuck:
                self._new_misses.append("stuck_sensor")
            if self._stopping:
                return None
            dose, misses = self._pending, self._new_misses
            self._pending, self._new_misses, self.busy = False, [], dose
            return dose, misses, stuck

    def _run(self) -> None:
        self._move(self.cfg.rest_angle)  # park: the arm may have been left anywhere
        self._settle_and_detach()
        while (job := self._next_job()) is not None:
            dose, misses, stuck = job
            try:
                if stuck:
                    self._hand.warn(self.cfg.id)
                    self.spool.set_counter("stuck", 1)  # the next heartbeat tells the server (an alert there)
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
            event = new_event(self.cfg.dose_ml, now=self.clock())
            self.spool.add(event, time.monotonic(), self.boot)  # on disk before the sender hears of it
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
        log.debug("servo dispenser=%s angle=%s", self.cfg.id, angle)
        self.servo.angle = angle

    def _settle_and_detach(self) -> None:
        time.sleep(self.cfg.return_s)  # not polling: the arm needs this long to get back before power is cut
        self.servo.detach()  # no pulses: no jitter, no idle current
        log.debug("servo dispenser=%s detached", self.cfg.id)

    def close(self) -> None:
        """Finish any stroke, park the servo at rest, release every pin; closing twice is harmless."""
        if self.closed:
            return
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._halt.set()
        if self._worker is not None:
            self._worker.join(self.cfg.hold_s + self.cfg.return_s + 2)
        if self.servo.value is not None:
            self._move(self.cfg.rest_angle)
            self._settle_and_detach()
        log.info("stopped dispenser=%s servo=rest doses=%d", self.cfg.id, self.doses)
        self._close_devices()

    def _close_devices(self) -> None:
        for device in (self.entries, self.sensor, self.refill_button, self.servo):
            if device is not None:
                device.close()
        self.servo = self.sensor = self.refill_button = self.entries = None


"""`--simulate`: people on the mock pins, hands at the sensor and, with a door counter, passages through its beams."""

from __future__ import annotations

import logging
import random
import threading

from gel_dispenser.device import Dispenser

log = logging.getLogger("dispenser")


class Simulator:
    """Simulated people: random arrivals, or exactly N presences; each comes in through the door when there is one."""

    def __init__(self, dispenser: Dispenser, stop: threading.Event, rng: random.Random | None = None):
        self.dispenser, self.stop = dispenser, stop
        self.rng = rng or random.Random()
        self.pin = dispenser.sensor.pin
        self.door = dispenser.entries

    def hand(self, present: bool) -> None:
        """Drive the mock sensor pin as a hand would (mind active-low modules)."""
        self._drive(self.pin, present, self.dispenser.cfg.sensor_active_low)

    def beam(self, index: int, broken: bool) -> None:
        """Break (or clear) a beam of the door counter: 0 the outer (entry_pin), 1 the inner (exit_pin)."""
        self._drive(self.door.beams[index].pin, broken, self.dispenser.cfg.entry_active_low)

    @staticmethod
    def _drive(pin: object, active: bool, active_low: bool) -> None:
        if active == active_low:
            pin.drive_low()
        else:
            pin.drive_high()

    def walk(self, entering: bool) -> None:
        """One person through the door, once the beams would count it: the beams broken, then cleared, in order."""
        if self.door is None:
            return
        self.stop.wait(self.door.ready_in())
        order = [0, 1][:len(self.door.beams)]
        order = order if entering else order[::-1]
        for index in order:
            self.beam(index, True)
        for index in order:
            self.beam(index, False)

    def presences(self, count: int) -> int:
        """Exactly `count` presences back to back, each waiting out the cooldown so it gives a dose."""
        d = self.dispenser
        for _ in range(count):
            d.wait_until(lambda: not d.busy or self.stop.is_set(), d.cfg.hold_s + d.cfg.return_s + 30)
            if self.stop.wait(d.ready_in()):
                break
            self.walk(entering=True)
            before = d.doses
            self.hand(True)
            d.wait_until(lambda before=before: d.doses > before or self.stop.is_set(), d.cfg.hold_s + 30)
            self.hand(False)
            if self.stop.is_set():
                break
        return d.doses

    def random_hands(self, mean_interval_s: float) -> None:
        """Until stopped: people at random (exponential gaps, mean `mean_interval_s`), hands held 0.3 to 1.5 s.

        Without a door counter each of them uses the dispenser. With one, they come in at that pace and only the
        share `simulate_hand_share` uses it; with two beams as many go out, at random among them.
        """
        cfg = self.dispenser.cfg
        two_way = self.door is not None and len(self.door.beams) == 2
        share = cfg.simulate_hand_share if self.door is not None else 1.0
        log.info("simulate dispenser=%s mean_interval=%.1fs door=%s share=%.2f", cfg.id, mean_interval_s,
                 "none" if self.door is None else f"{len(self.door.beams)} beam(s)", share)
        passages_per_s = (2 if two_way else 1) / mean_interval_s
        while not self.stop.wait(min(self.rng.expovariate(passages_per_s), threading.TIMEOUT_MAX)):
            entering = not two_way or self.rng.random() < 0.5
            self.walk(entering)
            if entering and self.rng.random() < share:
                self.hand(True)
                self.stop.wait(self.rng.uniform(0.3, 1.5))
                self.hand(False)

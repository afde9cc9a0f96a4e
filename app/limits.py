"""Limits that keep one client from starving the others: a rate per dispenser, a bound on concurrent exports."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """A token bucket per key (a dispenser): `per_min` units a minute, bursts up to `burst` (a minute's worth)."""

    def __init__(self, per_min: int, burst: float | None = None):
        self.rate = per_min / 60
        self.burst = float(per_min if burst is None else burst)
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (units left, when counted); keys: declared ids

    def take(self, key: str, cost: int = 1, now: float | None = None) -> int:
        """Spend `cost` units of `key`'s bucket: 0 when allowed, else whole seconds to wait (nothing spent)."""
        if self.rate <= 0:
            return 0
        now = time.monotonic() if now is None else now
        with self.lock:
            left, then = self.buckets.get(key, (self.burst, now))
            left = min(self.burst, left + (now - then) * self.rate)
            if left >= cost:
                self.buckets[key] = (left - cost, now)
                return 0
            self.buckets[key] = (left, now)
        return max(1, math.ceil((cost - left) / self.rate))

    def forget(self, key: str) -> None:
        """Drop a key's bucket (a client gone): the next one of that key starts full."""
        with self.lock:
            self.buckets.pop(key, None)


class Slots:
    """At most `size` holders at once; a taker that finds none free is refused, never queued.

    A slot held longer than `hold_s` (a client reading a few bytes now and then) is taken back by the next taker
    and marked expired, so that its stream ends at its next chunk: slow readers cannot keep everyone out.
    """

    def __init__(self, size: int, hold_s: float = math.inf):
        self.size, self.hold_s = size, hold_s
        self.lock = threading.Lock()
        self.held: dict[Slot, float] = {}  # slot -> when it was taken (monotonic)

    @property
    def free(self) -> int:
        """How many slots a taker would find free now (expired ones aside)."""
        return self.size - len(self.held)

    def take(self) -> Slot | None:
        """A slot to give back once done, or None when all are taken."""
        now = time.monotonic()
        with self.lock:
            for slot, since in list(self.held.items()):
                if now - since > self.hold_s:
                    slot.expired = True
                    del self.held[slot]
            if len(self.held) >= self.size:
                return None
            slot = Slot(self)
            self.held[slot] = now
        return slot

    def _give(self, slot: Slot) -> None:
        with self.lock:
            self.held.pop(slot, None)


class Slot:
    """One taken slot; giving it back twice counts once (a stream ends and is closed)."""

    def __init__(self, slots: Slots):
        self.slots: Slots | None = slots
        self.expired = False  # held past the deadline: taken back, the stream must stop

    def give(self) -> None:
        """Give the slot back (again: no effect)."""
        slots, self.slots = self.slots, None
        if slots is not None:
            slots._give(self)

"""What a batch of new events adds: per dispenser (running totals) and per minute, hour and local day (rollups)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

TEST_PREFIX = "t-"  # rollup sizes of test-mode events ("t-day"): kept for exports, read by no figure


@dataclass
class DispenserSums:
    """The new events of one dispenser in one transaction."""

    gel_ul: int = 0
    hands: int = 0
    events: int = 0  # live events
    newest: float | None = None  # newest dose time (an entries-only event is a passage, not a use)
    entries: int = 0
    test_events: int = 0


def sum_new_events(new: list) -> tuple[dict[str, DispenserSums], dict[tuple[str, int, bool], list[int]]]:
    """The inserted events summed per dispenser and per dispenser minute.

    `new` holds (dispenser, event_id, ts, gel, hands, entries, test) rows; a minute's sums are [gel, hands, events,
    entries], its test-mode events apart.
    """
    per_dispenser: dict[str, DispenserSums] = defaultdict(DispenserSums)
    per_minute: dict[tuple[str, int, bool], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for d, _, ts, gel, hands, entries, test in new:
        t = per_dispenser[d]
        if test:
            t.test_events += 1
        else:
            t.gel_ul += gel
            t.hands += hands
            t.events += 1
            t.entries += entries
            if (gel or hands or not entries) and (t.newest is None or ts > t.newest):
                t.newest = ts
        acc = per_minute[(d, int(ts // 60 * 60), bool(test))]
        acc[0] += gel
        acc[1] += hands
        acc[2] += 1
        acc[3] += entries
    return per_dispenser, per_minute


def rollup_sums(per_minute: dict[tuple[str, int, bool], list[int]],
                day_start: Callable[[int], int]) -> dict[tuple[str, str, int], list[int]]:
    """Minute, hour and local-day rollup increments from the per-minute sums (test mode under "t-" sizes).

    Hours and days are sums of minutes, so the local day (a datetime) is computed once per minute rather than
    once per event: every hour and every local midnight since 2000 (the earliest timestamp accepted) falls on
    a minute boundary.
    """
    sums: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    days: dict[int, int] = {}
    for (d, minute, test), values in per_minute.items():
        hour = minute // 3600 * 3600
        day = days.get(minute)
        if day is None:  # from the minute, not the hour: some zones' midnights are not hour-aligned
            day = days[minute] = day_start(minute)
        prefix = TEST_PREFIX if test else ""
        for key in ((prefix + "minute", d, minute), (prefix + "hour", d, hour), (prefix + "day", d, day)):
            acc = sums[key]
            for i, v in enumerate(values):
                acc[i] += v
    return sums

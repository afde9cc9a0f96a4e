"""What a batch adds: each dispenser's running totals and its minute, hour and local-day rollups, exact."""

from __future__ import annotations

from app.store.sums import TEST_PREFIX, rollup_sums, sum_new_events

T = 1_774_699_230.5  # 2026-03-28 12:00:30.5 UTC: inside a minute, not on its boundary
MINUTE = 1_774_699_200


def test_a_minute_of_one_dispenser_adds_up_and_a_passage_is_not_a_use() -> None:
    rows = [("d1", "a", T, 1500, 1, 0, False), ("d1", "b", T + 10, 1500, 1, 0, False),
            ("d1", "c", T + 20, 0, 0, 2, False)]  # the last one only counts people going through the door
    per_dispenser, per_minute = sum_new_events(rows)
    d1 = per_dispenser["d1"]
    assert (d1.gel_ul, d1.hands, d1.events, d1.entries, d1.test_events) == (3000, 2, 3, 2, 0)
    assert d1.newest == T + 10  # the last dose, not the passage after it
    assert per_minute == {("d1", MINUTE, False): [3000, 2, 3, 2]}


def test_an_older_dose_never_moves_the_last_use() -> None:
    per_dispenser, _ = sum_new_events([("d1", "a", T, 1000, 1, 0, False), ("d1", "b", T - 3600, 1000, 1, 0, False)])
    assert per_dispenser["d1"].newest == T and per_dispenser["d1"].events == 2
    alone, _ = sum_new_events([("d2", "a", T, 0, 0, 3, False)])
    assert alone["d2"].newest is None and alone["d2"].entries == 3  # a passage alone is no use at all


def test_test_mode_events_are_counted_apart_and_in_their_own_minute() -> None:
    rows = [("d1", "a", T, 1500, 1, 0, True), ("d1", "b", T + 1, 1500, 1, 0, True),
            ("d1", "c", T + 2, 700, 1, 0, False)]
    per_dispenser, per_minute = sum_new_events(rows)
    d1 = per_dispenser["d1"]
    assert (d1.test_events, d1.events, d1.gel_ul, d1.hands) == (2, 1, 700, 1)
    assert per_minute == {("d1", MINUTE, True): [3000, 2, 2, 0], ("d1", MINUTE, False): [700, 1, 1, 0]}


def test_minutes_are_cut_on_their_boundary() -> None:
    _, per_minute = sum_new_events([("d1", "a", MINUTE + 59.9, 1000, 1, 0, False),
                                    ("d1", "b", MINUTE + 60, 1000, 1, 0, False)])
    assert sorted(per_minute) == [("d1", MINUTE, False), ("d1", MINUTE + 60, False)]


def test_rollups_sum_minutes_into_hours_and_local_days_asking_the_day_once_per_minute() -> None:
    asked: list[int] = []

    def day_start(minute: int) -> int:
        asked.append(minute)
        return MINUTE - 12 * 3600  # both minutes fall on the day that began at this local midnight

    per_minute = {("d1", MINUTE, False): [1000, 1, 1, 0], ("d2", MINUTE, False): [500, 1, 1, 4],
                  ("d1", MINUTE + 60, False): [200, 0, 1, 0], ("d1", MINUTE, True): [300, 1, 1, 0]}
    sums = rollup_sums(per_minute, day_start)
    assert sums[("minute", "d1", MINUTE)] == [1000, 1, 1, 0]
    assert sums[("hour", "d1", MINUTE)] == [1200, 1, 2, 0]
    assert sums[("day", "d1", MINUTE - 12 * 3600)] == [1200, 1, 2, 0]
    assert sums[("day", "d2", MINUTE - 12 * 3600)] == [500, 1, 1, 4]
    assert sums[(TEST_PREFIX + "minute", "d1", MINUTE)] == [300, 1, 1, 0]
    assert sums[(TEST_PREFIX + "day", "d1", MINUTE - 12 * 3600)] == [300, 1, 1, 0]
    assert len(sums) == 3 * 4 - 2  # d1's two live minutes share one hour and one day
    assert sorted(asked) == [MINUTE, MINUTE + 60]  # once per minute, whatever the dispensers in it


def test_a_dose_counted_with_passages_is_still_a_use_and_passages_add_up() -> None:
    rows = [("d1", "a", T, 1000, 0, 1, False),  # gel, no hand seen, a passage: a use
            ("d2", "a", T, 0, 1, 1, False),  # a hand, no gel measured, a passage: a use
            ("d3", "a", T, 0, 0, 2, False), ("d3", "b", T + 1, 0, 0, 3, False)]
    per_dispenser, per_minute = sum_new_events(rows)
    assert per_dispenser["d1"].newest == T and per_dispenser["d2"].newest == T
    assert per_minute[("d3", MINUTE, False)] == [0, 0, 2, 5]

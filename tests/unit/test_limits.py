"""The limits that keep one client from starving the others: a token bucket per dispenser, bounded export slots."""

from __future__ import annotations

import math

from app.limits import RateLimiter, Slots


def test_a_bucket_starts_full_spends_and_refills_at_its_rate() -> None:
    rate = RateLimiter(60)  # one a second, bursts of 60
    assert rate.burst == 60.0 and rate.rate == 1.0
    assert rate.take("d1", 60, now=100.0) == 0  # a minute's worth at once
    assert rate.take("d1", 1, now=100.0) == 1  # empty: one second to wait, nothing spent
    assert rate.take("d1", 3, now=100.5) == 3  # 0.5 back, 2.5 missing: ceil -> 3 s
    assert rate.take("d1", 1, now=101.0) == 0  # one second later there is one again
    assert rate.take("d2", 60, now=101.0) == 0  # each key its own bucket


def test_refills_never_go_past_the_burst_and_a_refusal_spends_nothing() -> None:
    rate = RateLimiter(60, burst=10)
    assert rate.take("d1", 10, now=0.0) == 0
    assert rate.take("d1", 11, now=1000.0) == 1  # a long pause refills 10, not 1,000
    assert rate.take("d1", 10, now=1000.0) == 0  # the refusal above took nothing
    assert rate.take("d1", 1, now=1000.0) == 1


def test_zero_means_no_limit_and_forget_starts_a_key_afresh() -> None:
    assert RateLimiter(0).take("d1", 10**6) == 0
    rate = RateLimiter(6)  # one every ten seconds
    assert rate.take("d1", 6, now=0.0) == 0
    assert rate.take("d1", 1, now=0.0) == 10
    rate.forget("d1")
    rate.forget("never-seen")
    assert rate.take("d1", 6, now=0.0) == 0


def test_slots_refuse_beyond_their_size_and_come_back_once() -> None:
    slots = Slots(2)
    a, b = slots.take(), slots.take()
    assert a is not None and b is not None and slots.free == 0
    assert slots.take() is None
    a.give()
    a.give()  # twice counts once
    assert slots.free == 1
    c = slots.take()
    assert c is not None and slots.take() is None and c.expired is False and slots.hold_s == math.inf


def test_a_slot_held_past_its_deadline_is_taken_back_and_marked() -> None:
    slots = Slots(1, hold_s=-1)  # every slot is already past its deadline
    first = slots.take()
    second = slots.take()
    assert first is not None and first.expired and second is not None and not second.expired
    assert slots.free == 0
    first.give()  # the expired holder ends: the slot it lost stays with the new one
    assert slots.free == 0


def test_a_slow_rate_refills_by_its_rate_not_faster() -> None:
    rate = RateLimiter(6)  # 0.1 a second
    assert rate.take("d1", 6, now=0.0) == 0
    assert rate.take("d1", 2, now=10.0) == 10  # one back after 10 s, one more missing: 10 s
    assert rate.take("d1", 1, now=10.0) == 0

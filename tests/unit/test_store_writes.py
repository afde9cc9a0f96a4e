"""The store's writes on both databases: refills, repeated batches, rollups and the group commit's promises."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from app.store import Event
from app.store.contact import outages_between
from app.store.health import WritesRefused
from app.store.schema import events, refills, rollups
from devkit.servers import wait_for

T0 = 1_780_000_000.0  # a fixed instant: every write below says when it happened


def row_of(store, dispenser_id: str):
    """The dispenser's row as the store holds it."""
    return {r.id: r for r in store.changes_since(-1)[1]}[dispenser_id]


def test_a_refill_after_a_silence_ends_the_outage_and_marks_the_dispenser_seen(app) -> None:
    store = app.extensions["usage_store"]
    store.ingest("entree", [Event(gel_ul=1500, hands=1, ts=T0, event_id="a")], now=T0)
    later = T0 + store.offline_after_s + 600
    store.refill("entree", by="admin", now=later)
    assert [(r.began, r.ended) for r in outages_between(store, ["entree"], 0, later + 1)] == [
        (T0 + store.offline_after_s, later)]
    row = row_of(store, "entree")
    assert (row.last_seen, row.refilled_at, row.updated_at) == (later, later, later)


def test_each_refill_records_what_was_used_since_the_one_before(app) -> None:
    store = app.extensions["usage_store"]
    store.ingest("entree", [Event(gel_ul=250_000, hands=1, ts=T0, event_id="a")], now=T0)
    store.refill("entree", by="admin", now=T0 + 10)
    store.ingest("entree", [Event(gel_ul=100_000, hands=1, ts=T0 + 20, event_id="b")], now=T0 + 20)
    store.refill("entree", by="marc", now=T0 + 30)
    with store.engine.connect() as conn:
        done = conn.execute(sa.select(refills.c.by, refills.c.gel_ul_before).order_by(refills.c.at)).all()
    assert [tuple(r) for r in done] == [("admin", 250_000), ("marc", 100_000)]
    assert row_of(store, "entree").refill_gel_ul == 350_000


def test_a_batch_of_only_repeats_counts_nothing_yet_marks_the_dispenser_seen(app) -> None:
    store = app.extensions["usage_store"]
    first = [Event(gel_ul=1500, hands=1, ts=T0, event_id="a"), Event(gel_ul=1500, hands=1, ts=T0, event_id="b")]
    assert store.ingest("entree", first, now=T0) == (2, 0)
    assert store.ingest("entree", [first[1], first[1]], now=T0 + 60) == (0, 2)  # a spool sent again
    row = row_of(store, "entree")
    assert (row.gel_ul, row.hands, row.events, row.last_seen) == (3000, 2, 2, T0 + 60)
    assert store.ingest("entree", [], now=T0 + 90) == (0, 0)  # nothing to store: a contact all the same
    assert (row_of(store, "entree").last_seen, row_of(store, "entree").updated_at) == (T0 + 90, T0 + 90)


def test_events_of_a_dispenser_in_test_mode_are_kept_apart_from_every_figure(app) -> None:
    store = app.extensions["usage_store"]
    before = store.changes_since(-1)[0]
    store.set_mode("entree", "test")
    store.ingest("entree", [Event(gel_ul=1500, hands=1, ts=T0, event_id="t1")], now=T0)
    row, change = row_of(store, "entree"), store.changes_since(-1)[0]
    assert (row.gel_ul, row.hands, row.events, row.test_events) == (0, 0, 0, 1)
    assert (change.gel_ul, change.hands) == (before.gel_ul, before.hands)
    with store.engine.connect() as conn:
        kept = conn.execute(sa.select(events.c.event_id, events.c.test)).all()
        sizes = {r.size for r in conn.execute(sa.select(rollups.c.size))}
    assert [tuple(r) for r in kept] == [("t1", True)] and sizes == {"t-minute", "t-hour", "t-day"}
    store.set_mode("entree", "live")
    store.ingest("entree", [Event(gel_ul=1500, hands=1, ts=T0 + 60, event_id="l1")], now=T0 + 60)
    row = row_of(store, "entree")
    assert (row.gel_ul, row.hands, row.events, row.test_events) == (1500, 1, 1, 1)


def test_uses_of_one_minute_sent_apart_add_up_in_every_rollup(app) -> None:
    store = app.extensions["usage_store"]
    store.ingest("entree", [Event(gel_ul=1500, hands=1, ts=T0, event_id="a", entries=3)], now=T0)
    store.ingest("entree", [Event(gel_ul=2500, hands=1, ts=T0 + 1, event_id="b", entries=2)], now=T0 + 1)
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(rollups.c.size, rollups.c.gel_ul, rollups.c.hands, rollups.c.events,
                                       rollups.c.entries).where(rollups.c.dispenser_id == "entree")).all()
    assert sorted(tuple(r) for r in found) == [("day", 4000, 2, 2, 5), ("hour", 4000, 2, 2, 5),
                                               ("minute", 4000, 2, 2, 5)]


def test_a_bucket_size_the_store_does_not_know_is_refused(app) -> None:
    with pytest.raises(ValueError, match="week"):
        app.extensions["usage_store"].bucket_start("week", T0)


def queued_together(group, send: Callable[[int], None], n: int) -> None:
    """Run send(0..n-1) in threads that all queue behind a commit under way, then let them commit; wait for them."""
    with group.commit_lock:  # a commit is under way: the next batches queue behind it
        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        wait_for(lambda: len(group.waiting) >= n, 10, interval=0.005, message="batches queued")
    for t in threads:
        t.join(10)


def test_batches_waiting_together_share_one_commit(app) -> None:
    store = app.extensions["usage_store"]
    group = store.group_commit
    results: dict[int, object] = {}

    def send(i: int) -> None:
        results[i] = store.ingest_shared("entree", [Event(gel_ul=1000, hands=1, ts=time.time(), event_id=f"e{i}")])

    queued_together(group, send, 6)
    assert group.commits == 1  # one transaction for the six, and no empty one after it
    assert {(r.accepted, r.duplicates, r.commit, r.hands_detected) for r in results.values()} == {(1, 0, 1, 6)}


def test_a_commit_that_fails_fails_every_batch_it_held(app, monkeypatch) -> None:
    store = app.extensions["usage_store"]
    group = store.group_commit

    def broken(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(group, "store_batches", broken)
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            store.ingest_shared("entree", [Event(gel_ul=1000, hands=1, ts=time.time(), event_id=f"e{i}")])
        except Exception as exc:  # what each caller sees is the point
            errors.append(exc)

    queued_together(group, send, 3)
    assert len(errors) == 3 and all(isinstance(e, WritesRefused) and "disk I/O error" in str(e) for e in errors)
    assert group.commits == 0


def test_each_group_commit_has_the_next_number_and_says_its_change(app) -> None:
    store = app.extensions["usage_store"]
    first = store.ingest_shared("entree", [Event(gel_ul=1000, hands=1, ts=T0, event_id="a")])
    second = store.ingest_shared("entree", [Event(gel_ul=1000, hands=1, ts=T0, event_id="b")])
    assert (first.commit, second.commit) == (1, 2)
    assert second.seq == store.changes_since(-1)[0].seq > first.seq

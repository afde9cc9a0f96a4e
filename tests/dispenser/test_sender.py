"""The sender's promises against a fake server: flush on stop, the pace after a refusal, split batches, refills."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from devkit.servers import wait_for
from gel_dispenser import __version__
from gel_dispenser.sender import Sender, ack_problem
from gel_dispenser.spool import Pending, Spool, new_event
from gel_dispenser.wire import MAX_ANSWER_BYTES, MAX_RETRY_AFTER_S, MIN_RETRY_AFTER_S, Answer, BoundedAdapter
from tests.helpers.fake_server import EVENTS_PATH, Handler, counts_right
from tests.helpers.rigs import make_config, spooled


@pytest.fixture(autouse=True)
def no_unexpected_error(request, caplog) -> Iterator[None]:
    """Every answer below has its path in the sender: none may end in the thread's catch-all (unless marked)."""
    yield
    if request.node.get_closest_marker("sender_error_expected"):
        return
    assert not [r for r in caplog.get_records("call") if r.getMessage().startswith("sender error")]


def events_sent(fake) -> list[list[dict]]:
    """The batches of events the fake received, in order."""
    with fake.lock:
        return [json.loads(body) for (method, path, _), body in zip(fake.requests, fake.bodies, strict=True)
                if method == "POST" and path == EVENTS_PATH]


def test_stop_with_a_flush_delivers_the_backlog_before_stopping(fake, tmp_path) -> None:
    ready = threading.Event()

    def down_then_up(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and not ready.is_set():
            return handler.send(503, b"{}")  # no Retry-After: our own backoff, which a flush skips
        return counts_right(handler, body)

    server = fake(down_then_up)
    sender, spool = spooled(tmp_path, server.url, backoff_base_s=60.0, backoff_max_s=60.0)
    sender.start()
    wait_for(lambda: server.posts() >= 1, 5, message="first delivery refused")
    ready.set()
    assert spool.backlog() == 3  # backing off for a minute
    assert sender.stop(flush_s=0.9)  # less than a second is still time to deliver
    assert spool.backlog() == 0
    assert sum(len(batch) for batch in events_sent(server)[1:]) == 3
    spool.close()


def test_stop_without_a_flush_keeps_the_backlog_spooled(fake, tmp_path) -> None:
    server = fake(lambda h, body: h.send(503, b"{}"))
    sender, spool = spooled(tmp_path, server.url, backoff_base_s=60.0, backoff_max_s=60.0)
    sender.start()
    wait_for(lambda: server.posts() >= 1, 5, message="first delivery refused")
    flushes: list[float] = []
    sender.wait_empty = flushes.append  # a flush would skip the backoff: none is asked for
    assert sender.stop()
    assert spool.backlog() == 3 and server.posts() == 1 and flushes == []
    spool.close()


def test_a_refused_token_waits_auth_retry_s_not_the_short_backoff(fake, tmp_path) -> None:
    refused = threading.Event()

    def refuse_once(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and not refused.is_set():
            refused.set()
            return handler.send(401, b'{"error": "unknown token"}')
        return counts_right(handler, body)

    server = fake(refuse_once)
    sender, spool = spooled(tmp_path, server.url, auth_retry_s=0.6, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    wait_for(lambda: spool.backlog() == 0, 10, message="delivered after the refusal")
    times = server.post_times()
    assert len(times) == 2
    assert times[1] - times[0] >= 0.6 - 0.05  # the second try waited the refusal's pace
    assert sender.stop()
    spool.close()


def test_a_404_is_a_refusal_too_but_a_408_is_retried_soon(fake, tmp_path) -> None:
    answers = iter([404, 408])

    def status_then_ok(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH:
            status = next(answers, None)
            if status is not None:
                return handler.send(status, b'{"error": "no"}')
        return counts_right(handler, body)

    server = fake(status_then_ok)
    sender, spool = spooled(tmp_path, server.url, auth_retry_s=1.5, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    wait_for(lambda: spool.backlog() == 0, 10, message="delivered")
    times = server.post_times()
    assert len(times) == 3
    assert times[1] - times[0] >= 1.45  # 404: the slow pace of a refusal
    assert times[2] - times[1] < 1.0  # 408: a timeout, retried with the short backoff (0.02 s at most)
    assert sender.stop()
    spool.close()


@pytest.mark.parametrize(("doses", "batches"), [
    # [a b X c] refused; [a b] delivered; [X c] refused; [X] quarantined; [c] delivered: no retry wait between.
    ((1.5, 1.5, 999.0, 1.5), [4, 2, 2, 1, 1]),
    # [X a b c] refused; [X a] refused; [X] quarantined; [a] delivered; then [b c], the second half, at once.
    ((999.0, 1.5, 1.5, 1.5), [4, 2, 1, 1, 2]),
])
def test_a_bad_event_is_split_out_and_both_halves_go_in_the_same_round(fake, tmp_path, doses, batches) -> None:
    def refuse_the_bad_one(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and any(e["gel_used"] > 100 for e in json.loads(body)):
            return handler.send(400, b'{"error": "gel_used: too large"}')
        return counts_right(handler, body)

    server = fake(refuse_the_bad_one)
    cfg = make_config(tmp_path, server_url=server.url, backoff_base_s=60.0, backoff_max_s=60.0)
    spool = Spool(cfg.spool)
    for dose in doses:
        spool.add(new_event(dose))
    sender = Sender(cfg, spool).start()
    wait_for(lambda: spool.backlog() == 0, 10, message="good ones delivered, the bad one quarantined")
    assert [e[2] for e in spool.quarantined()] == [400]
    assert json.loads(spool.quarantined()[0][1])["gel_used"] == 999.0
    assert "too large" in spool.quarantined()[0][3]
    assert [len(b) for b in events_sent(server)] == batches
    assert sender.stop()
    spool.close()


def test_a_batch_larger_than_batch_size_goes_in_several_posts(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dispenser")
    server = fake(counts_right)
    sender, spool = spooled(tmp_path, server.url, doses=5, batch_size=2)
    sender.start()
    last = "delivered dispenser=entree events=1 accepted=1 duplicates=0 backlog=0"  # no streak: nothing after it
    wait_for(lambda: last in caplog.messages, 10, message="delivered")
    assert [len(b) for b in events_sent(server)] == [2, 2, 1]
    assert "delivered dispenser=entree events=2 accepted=2 duplicates=0 backlog=3" in caplog.messages
    assert sender.stop()
    spool.close()


def test_a_retry_after_holds_delivery_even_for_a_flush(fake, tmp_path) -> None:
    held = threading.Event()

    def busy_once(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and not held.is_set():
            held.set()
            return handler.send(429, b'{"error": "slow down"}', headers={"Retry-After": "2"})
        return counts_right(handler, body)

    server = fake(busy_once)
    sender, spool = spooled(tmp_path, server.url, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    wait_for(held.is_set, 5, message="429")
    assert not sender.wait_empty(1.0)  # the server asked for 2 s: even someone waiting does not skip it
    assert sender.wait_empty(5.0)
    times = server.post_times()
    assert times[1] - times[0] >= 1.9
    assert sender.stop()
    spool.close()


def test_a_refill_refused_for_good_is_dropped_and_one_that_failed_is_kept(fake, tmp_path) -> None:
    statuses = {"refill": 503}

    def refill_answers(handler: Handler, body: bytes | None) -> None:
        if handler.path.endswith("/refill"):
            return handler.send(statuses["refill"], b'{"error": "x"}')
        return counts_right(handler, body)

    server = fake(refill_answers)
    sender, spool = spooled(tmp_path, server.url, doses=0, backoff_base_s=0.05, backoff_max_s=0.1)
    sender.request_refill()
    sender.start()
    wait_for(lambda: server.posts("/refill") >= 2, 5, message="a failed refill retried")
    assert spool.counter("refill_pending") == 1
    statuses["refill"] = 404
    wait_for(lambda: spool.counter("refill_pending") == 0, 5, message="a refused refill dropped")
    sent = server.posts("/refill")
    sender.wake()
    wait_for(lambda: server.posts("/heartbeat") >= 1, 5, message="heartbeat")
    assert server.posts("/refill") == sent
    assert sender.stop()
    spool.close()


def test_the_heartbeat_carries_backlog_version_missed_and_stuck(fake, tmp_path) -> None:
    server = fake(lambda h, body: h.send(503, b"{}") if h.path == EVENTS_PATH else counts_right(h, body))
    sender, spool = spooled(tmp_path, server.url, backoff_base_s=60.0, backoff_max_s=60.0)
    spool.bump("missed", 4)
    spool.set_counter("stuck", 1)
    sender.start()
    wait_for(lambda: server.posts("/heartbeat") >= 1, 5, message="heartbeat at start")
    with server.lock:
        body = next(b for (m, p, _), b in zip(server.requests, server.bodies, strict=True) if p.endswith("/heartbeat"))
    beat = json.loads(body)
    assert beat == {"backlog": 3, "version": __version__, "missed": 4, "stuck": True}
    assert sender.stop()
    spool.close()


def test_ack_problem_accepts_only_counts_that_add_up_to_the_batch() -> None:
    assert ack_problem({"accepted": 2, "duplicates": 1}, 3) is None
    assert ack_problem({"accepted": 0, "duplicates": 0}, 0) is None
    for payload in ({"accepted": 3}, {"accepted": True, "duplicates": 2}, {"accepted": -1, "duplicates": 4},
                    {"accepted": 1.0, "duplicates": 2}, {"accepted": 2, "duplicates": 2}):
        assert ack_problem(payload, 3) is not None, payload
    assert ack_problem(None, 3).reason == "answer not JSON"
    assert "sent=3" in str(ack_problem({"accepted": 1, "duplicates": 1}, 3))


def test_a_refill_is_reported_once_then_forgotten(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dispenser")
    server = fake(counts_right)  # names this dispenser in its answer, as the usage server does
    sender, spool = spooled(tmp_path, server.url, doses=0)
    sender.request_refill()
    sender.start()
    wait_for(lambda: "refill dispenser=entree reported=yes" in caplog.messages, 5, message="refill acknowledged")
    assert spool.counter("refill_pending") == 0
    sender.wake()
    wait_for(lambda: server.posts("/heartbeat") >= 1, 5, message="heartbeat")
    assert server.posts("/refill") == 1
    assert sender.stop()
    spool.close()


def test_a_refill_answered_for_another_dispenser_is_not_taken_as_done(fake, tmp_path) -> None:
    named = {"id": "cafeteria"}

    def names(handler: Handler, body: bytes | None) -> None:
        if handler.path.endswith("/refill"):
            return handler.send(200, json.dumps({"dispenser": dict(named)}).encode())
        return counts_right(handler, body)

    server = fake(names)
    sender, spool = spooled(tmp_path, server.url, doses=0, backoff_base_s=0.05, backoff_max_s=0.1)
    sender.request_refill()
    sender.start()
    wait_for(lambda: server.posts("/refill") >= 2, 5, message="the refill tried again")
    assert spool.counter("refill_pending") == 1
    named["id"] = "entree"
    wait_for(lambda: spool.counter("refill_pending") == 0, 5, message="acknowledged once named")
    assert sender.stop()
    spool.close()


def test_a_refill_the_server_could_not_take_is_tried_again_after_its_retry_after(fake, tmp_path) -> None:
    answers = iter([(500, {}), (429, {"Retry-After": "1"})])

    def busy_then_ok(handler: Handler, body: bytes | None) -> None:
        if handler.path.endswith("/refill"):
            status, headers = next(answers, (None, None))
            if status is not None:
                return handler.send(status, b'{"error": "busy"}', headers=headers)
        return counts_right(handler, body)

    server = fake(busy_then_ok)
    sender, spool = spooled(tmp_path, server.url, doses=0, backoff_base_s=0.05, backoff_max_s=0.1)
    sender.request_refill()
    sender.start()
    wait_for(lambda: spool.counter("refill_pending") == 0, 10, message="refill reported in the end")
    times = server.post_times("/refill")
    assert len(times) == 3
    assert times[2] - times[1] >= 0.95  # the 429's Retry-After, not the short backoff
    assert sender.stop()
    spool.close()


def test_the_backoff_doubles_up_to_its_cap_with_jitter_below_it(tmp_path, monkeypatch) -> None:
    sender, spool = spooled(tmp_path, "http://127.0.0.1:9", doses=0, backoff_base_s=1.0, backoff_max_s=8.0)
    monkeypatch.setattr("gel_dispenser.sender.random.uniform", lambda low, high: high)
    assert [sender._delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    sender._failures = 0
    monkeypatch.setattr("gel_dispenser.sender.random.uniform", lambda low, high: low)
    assert [sender._delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]  # never sooner than half
    spool.close()


def test_an_oversized_single_event_is_quarantined_and_a_503_s_retry_after_is_kept(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dispenser")
    answers = iter([(503, {"Retry-After": "1"}), (413, {})])

    def busy_then_too_large(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH:
            status, headers = next(answers, (None, None))
            if status is not None:
                return handler.send(status, b'{"error": "too large"}', headers=headers)
        return counts_right(handler, body)

    server = fake(busy_then_too_large)
    sender, spool = spooled(tmp_path, server.url, doses=1, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    wait_for(lambda: "quarantined dispenser=entree" in caplog.text, 10, message="quarantined")  # logged after
    times = server.post_times()
    assert times[1] - times[0] >= 0.95  # the 503's Retry-After
    assert [q[2] for q in spool.quarantined()] == [413] and spool.backlog() == 0
    event_id = spool.quarantined()[0][0]
    assert f"quarantined dispenser=entree event_id={event_id} status=413 error='too large'" in caplog.messages
    assert "delivery deferred dispenser=entree status=503 events=1 backlog=1 retry_after=1.0s" in caplog.messages
    assert sender.stop()
    spool.close()


def test_what_the_sender_logs_names_the_dispenser_the_status_and_the_streak(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dispenser")
    answers = iter([401, 500])

    def refuse_fail_then_ok(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH:
            status = next(answers, None)
            if status is not None:
                return handler.send(status, b'{"error": "unknown token"}')
        return counts_right(handler, body)

    server = fake(refuse_fail_then_ok)
    sender, spool = spooled(tmp_path, server.url, auth_retry_s=0.2, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    # The spool empties a moment before the line that says so is written: wait on the line.
    wait_for(lambda: "delivered dispenser=entree" in caplog.text, 10, message="delivered in the end")
    assert spool.backlog() == 0
    assert ("refused dispenser=entree status=401 error='unknown token' backlog=3 retry_in=0s "
            "hint='check token and server_url in [dispenser] and [[server.dispensers]]'") in caplog.messages
    assert "delivery failed dispenser=entree status=500 events=3 backlog=3 attempt=1 retry_in=0.0s" in caplog.messages
    assert ("delivered dispenser=entree events=3 accepted=3 duplicates=0 backlog=0 after_failed_attempts=2"
            in caplog.messages)
    assert sender.stop()
    spool.close()


def test_a_max_batch_splits_only_a_batch_larger_than_it() -> None:
    def answer(limit: object) -> Answer:
        return Answer(429, {}, json.dumps({"max_batch": limit}).encode())

    assert Sender._over_server_batch(answer(2), 3)
    assert not Sender._over_server_batch(answer(3), 3) and not Sender._over_server_batch(answer(0), 3)
    assert not Sender._over_server_batch(answer(True), 3) and not Sender._over_server_batch(answer("2"), 3)
    assert not Sender._over_server_batch(Answer(503, {}, json.dumps({"max_batch": 2}).encode()), 3)


def test_wait_empty_delivers_within_a_short_timeout(fake, tmp_path) -> None:
    server = fake(counts_right)
    sender, spool = spooled(tmp_path, server.url, doses=0)
    sender.start()
    wait_for(lambda: server.posts("/heartbeat") >= 1, 5, message="started")
    spool.add(new_event(1.5))
    assert sender.wait_empty(0.9)  # less than a second is still time to deliver
    assert spool.backlog() == 0 and sender.stop()
    spool.close()


def test_a_413_splits_a_batch_until_each_part_fits_and_quarantines_nothing(fake, tmp_path) -> None:
    def one_at_a_time(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and len(json.loads(body)) > 1:
            return handler.send(413, b'{"error": "too large"}')
        return counts_right(handler, body)

    server = fake(one_at_a_time)
    sender, spool = spooled(tmp_path, server.url)
    sender.start()
    wait_for(lambda: spool.backlog() == 0, 10, message="delivered one by one")
    assert [len(b) for b in events_sent(server)] == [3, 1, 2, 1, 1] and spool.quarantined() == []
    assert sender.stop()
    spool.close()


def test_a_429_without_retry_after_and_a_500_with_one_are_failures_retried_soon(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dispenser")
    answers = iter([(429, {}), (500, {"Retry-After": "30"})])  # a Retry-After only counts on a 429 or a 503

    def busy_then_broken(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH:
            status, headers = next(answers, (None, None))
            if status is not None:
                return handler.send(status, b'{"error": "busy"}', headers=headers)
        return counts_right(handler, body)

    server = fake(busy_then_broken)
    sender, spool = spooled(tmp_path, server.url, auth_retry_s=30.0, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    wait_for(lambda: any(m.startswith("delivered dispenser=entree") for m in caplog.messages), 10,
             message="delivered after two short backoffs")
    failed = [m for m in caplog.messages if m.startswith("delivery failed")]
    # Two reasons in one streak: each logged (at WARNING), neither taken for a refusal or a hold.
    assert failed == ["delivery failed dispenser=entree status=429 events=3 backlog=3 attempt=1 retry_in=0.0s",
                      "delivery failed dispenser=entree status=500 events=3 backlog=3 attempt=2 retry_in=0.0s"]
    assert not any(m.startswith(("refused", "delivery deferred")) for m in caplog.messages)
    assert sender.stop()
    spool.close()


def test_each_refusal_is_an_error_once_per_status_in_a_streak(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="dispenser")
    answers = iter([401, 403, 401])

    def refuse_then_ok(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH:
            status = next(answers, None)
            if status is not None:
                return handler.send(status, b'{"error": "no"}')
        return counts_right(handler, body)

    server = fake(refuse_then_ok)
    sender, spool = spooled(tmp_path, server.url, auth_retry_s=0.05)
    sender.start()
    wait_for(lambda: any(m.startswith("delivered dispenser=entree") for m in caplog.messages), 10,
             message="delivered once accepted")
    refused = [(r.levelno, re.search(r"status=(\d+)", r.getMessage())[1]) for r in caplog.records
               if r.getMessage().startswith("refused")]
    assert refused == [(logging.ERROR, "401"), (logging.ERROR, "403"), (logging.DEBUG, "401")]
    assert sender.stop()
    spool.close()


def test_after_a_delivery_the_next_failure_starts_a_new_streak_from_the_first_attempt(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="dispenser")
    answers = [500, 500, None, 500]  # None: accepted

    def fail_in_streaks(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and answers and answers.pop(0) is not None:
            return handler.send(500, b'{"error": "x"}')
        return counts_right(handler, body)

    server = fake(fail_in_streaks)
    sender, spool = spooled(tmp_path, server.url, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    wait_for(lambda: spool.backlog() == 0, 10, message="the first streak ended")
    spool.add(new_event(1.5))
    sender.wake()
    wait_for(lambda: "after_failed_attempts=1" in caplog.text, 10, message="the second streak ended")
    attempts = [int(m.rsplit("attempt=", 1)[1].split()[0]) for m in caplog.messages if m.startswith("delivery failed")]
    assert attempts == [1, 2, 1]
    assert [m.rsplit(" ", 1)[1] for m in caplog.messages if m.startswith("delivered")] == [
        "after_failed_attempts=2", "after_failed_attempts=1"]
    assert sender.stop()
    spool.close()


def test_a_retry_after_is_capped_and_the_cap_logged_naming_what_waits(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dispenser")

    def refill_later(handler: Handler, body: bytes | None) -> None:
        if handler.path.endswith("/refill"):
            return handler.send(429, b'{"error": "busy"}', headers={"Retry-After": "100000"})
        return counts_right(handler, body)

    server = fake(refill_later)
    sender, spool = spooled(tmp_path, server.url, doses=0)
    sender.request_refill()
    sender.start()
    line = f"refill retry_after=100000s capped to {MAX_RETRY_AFTER_S:.0f}s dispenser=entree"
    wait_for(lambda: line in caplog.messages, 5, message="the cap logged")
    assert sender.stop()
    caplog.clear()
    assert sender._hold(MAX_RETRY_AFTER_S, "delivery") == MAX_RETRY_AFTER_S and caplog.messages == []  # at the cap
    assert sender._hold(0.0, "delivery") == MIN_RETRY_AFTER_S  # "Retry-After: 0" again and again is no loop
    spool.close()


@pytest.mark.sender_error_expected
def test_an_unexpected_error_is_logged_and_retried_after_a_backoff_not_at_once(fake, tmp_path, caplog,
                                                                              monkeypatch) -> None:
    server = fake(counts_right)
    sender, spool = spooled(tmp_path, server.url, backoff_base_s=0.4, backoff_max_s=0.4)
    calls: list[float] = []
    due = spool.due

    def broken_once(limit: int) -> list[Pending]:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise OSError("disk hiccup")
        return due(limit)

    monkeypatch.setattr(spool, "due", broken_once)
    sender.start()
    wait_for(lambda: spool.backlog() == 0, 10, message="delivered after the error")
    errors = [r for r in caplog.records if r.getMessage() == "sender error dispenser=entree"]
    assert len(errors) == 1 and errors[0].exc_info[0] is OSError
    assert calls[1] - calls[0] >= 0.19  # the backoff (0.2-0.4 s), not a tight loop
    assert sender.stop()
    spool.close()


def test_heartbeats_keep_their_own_pace_whatever_the_deliveries(fake, tmp_path) -> None:
    server = fake(counts_right)
    sender, spool = spooled(tmp_path, server.url, doses=0, heartbeat_s=60.0)
    sender.start()
    wait_for(lambda: server.posts("/heartbeat") == 1, 5, message="the heartbeat at start")
    for n in range(1, 4):
        spool.add(new_event(1.5))
        sender.wake()
        wait_for(lambda n=n: server.posts() == n and spool.backlog() == 0, 5, message=f"delivery {n}")
    assert server.posts("/heartbeat") == 1  # the one at start: the next is due in a minute
    assert sender.stop()
    spool.close()


def test_a_failed_first_half_ends_the_round_and_the_whole_batch_is_tried_again(fake, tmp_path) -> None:
    answers = [400, 500]  # the batch refused as a whole, then its first half fails: retry, in order

    def refuse_then_fail(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and answers:
            return handler.send(answers.pop(0), b'{"error": "x"}')
        return counts_right(handler, body)

    server = fake(refuse_then_fail)
    sender, spool = spooled(tmp_path, server.url, doses=4, backoff_base_s=0.01, backoff_max_s=0.02)
    sender.start()
    wait_for(lambda: spool.backlog() == 0, 10, message="delivered in the end")
    assert [len(b) for b in events_sent(server)][:3] == [4, 2, 4]  # never the second half past a failed first
    assert sender.stop()
    spool.close()


def test_each_dose_of_this_boot_carries_its_age_and_others_go_as_spooled(tmp_path, monkeypatch) -> None:
    sender, spool = spooled(tmp_path, "http://127.0.0.1:9", doses=0)
    monkeypatch.setattr("gel_dispenser.sender.time", SimpleNamespace(monotonic=lambda: 100.0))  # this module's only
    body = '{"event_id":"e","gel_used":1.5}'
    rows = [Pending(1, "e", body, 98.76543, sender.boot), Pending(2, "e", body, 100.5, sender.boot),
            Pending(3, "e", body, 98.0, "an-earlier-boot"), Pending(4, "e", body, None, None)]
    sent = json.loads(sender.body(rows))
    assert [e.get("age_s") for e in sent] == [1.235, 0.0, None, None]  # a clock read late never makes it negative
    spool.close()


def test_every_post_carries_the_dispenser_s_clock(fake, tmp_path) -> None:
    server = fake(counts_right)
    sender, spool = spooled(tmp_path, server.url, doses=1, clock=lambda: 1_780_000_000.25)
    sender.start()
    wait_for(lambda: spool.backlog() == 0, 5, message="delivered")
    with server.lock:
        clocks = {headers.get("X-Dispenser-Clock") for method, _, headers in server.requests if method == "POST"}
    assert clocks == {"1780000000.250"}
    assert sender.stop()
    spool.close()


def test_heartbeat_and_refill_failures_are_logged_once_per_reason_in_a_streak(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="dispenser")
    beats = ["redirect", "too large", (500, "e" * 300), (503, "busy"), (500, "e" * 300)]
    refills = [b"not json", b'{"dispenser": {"id": "cafeteria"}}']

    def misbehave(handler: Handler, body: bytes | None) -> None:
        if handler.path.endswith("/heartbeat") and beats:
            beat = beats.pop(0)
            if beat == "redirect":
                return handler.send(302, b"", headers={"Location": "http://elsewhere.invalid/"})
            if beat == "too large":
                handler.send_response(200)
                handler.send_header("Content-Length", "1000000000")
                handler.end_headers()
                return None
            return handler.send(beat[0], json.dumps({"error": beat[1]}).encode())
        if handler.path.endswith("/refill") and refills:
            return handler.send(200, refills.pop(0))
        return counts_right(handler, body)

    server = fake(misbehave)
    sender, spool = spooled(tmp_path, server.url, doses=0, heartbeat_s=0.05, backoff_base_s=0.01,
                            backoff_max_s=0.02)
    sender.request_refill()
    sender.start()
    wait_for(lambda: "heartbeat dispenser=entree status=200" in caplog.messages
             and "refill dispenser=entree reported=yes" in caplog.messages, 10, message="both through in the end")
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.getMessage().startswith(("heartbeat", "refill"))]
    beat_lines = [line for line in lines if line[1].startswith("heartbeat")][:6]
    assert beat_lines == [
        (logging.WARNING, "heartbeat failed dispenser=entree redirect not followed status=302 "
                          "location='http://elsewhere.invalid/'"),
        (logging.WARNING, f"heartbeat failed dispenser=entree answer too large content_length=1000000000 "
                          f"max={MAX_ANSWER_BYTES}"),
        (logging.ERROR, f"heartbeat failed dispenser=entree status=500 error={'e' * 200!r}"),
        (logging.ERROR, "heartbeat failed dispenser=entree status=503 error='busy'"),
        (logging.DEBUG, f"heartbeat failed dispenser=entree status=500 error={'e' * 200!r}"),
        (logging.DEBUG, "heartbeat dispenser=entree status=200"),
    ]
    assert [line for line in lines if line[1].startswith("refill")] == [
        (logging.WARNING, "refill failed dispenser=entree answer not JSON status=200"),
        (logging.WARNING, "refill failed dispenser=entree answer does not acknowledge it status=200"),
        (logging.DEBUG, "refill dispenser=entree status=200"),
        (logging.INFO, "refill dispenser=entree reported=yes"),
    ]
    assert sender.stop()
    spool.close()


def test_every_post_says_who_sends_it_and_asks_for_an_answer_it_can_count(fake, tmp_path) -> None:
    def behind_a_proxy(handler: Handler, body: bytes | None) -> None:
        handler.path = handler.path.removeprefix("/GEL-X")
        return counts_right(handler, body)

    server = fake(behind_a_proxy)
    sender, spool = spooled(tmp_path, server.url + "/GEL-X/", doses=1)  # a path prefix and a trailing slash
    sender.start()
    wait_for(lambda: spool.backlog() == 0 and server.posts("/heartbeat") == 1, 5, message="delivered, heartbeat")
    with server.lock:
        posted = [(path, headers) for method, path, headers in server.requests if method == "POST"]
    assert {path for path, _ in posted} == {"/GEL-X" + EVENTS_PATH, "/GEL-X/api/dispensers/entree/heartbeat"}
    for _, headers in posted:
        sent = {name.lower(): value for name, value in headers.items()}
        assert sent["authorization"] == f"Bearer {sender.cfg.token}"
        assert sent["content-type"] == "application/json"
        assert sent["user-agent"] == f"gel-dispenser/{__version__}"
        assert sent["accept-encoding"] == "identity"  # the answer's size cap counts the bytes the server sent
    assert isinstance(sender.http.get_adapter("https://gel.example/"), BoundedAdapter)  # TLS is bounded too
    assert sender.stop()
    spool.close()


def test_the_sender_thread_is_named_and_never_holds_the_process_open(tmp_path) -> None:
    sender, spool = spooled(tmp_path, "http://127.0.0.1:9", doses=0)
    # Named in stack dumps and log records; a daemon, so a dispenser whose main thread dies still exits.
    assert (sender._thread.name, sender._thread.daemon) == ("sender", True)
    spool.close()


def test_a_server_that_never_answers_is_given_up_after_timeout_s_not_deadline_s(fake, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dispenser")
    released = threading.Event()

    def never(handler: Handler, body: bytes | None) -> None:
        released.wait(10)

    server = fake(never)
    sender, spool = spooled(tmp_path, server.url, doses=1, timeout_s=0.3, deadline_s=30.0, backoff_base_s=60.0,
                            backoff_max_s=60.0)
    sender.start()
    try:
        wait_for(lambda: "network error=ReadTimeout" in caplog.text, 10, message="read timeout after timeout_s")
        assert "deadline exceeded" not in caplog.text
    finally:
        released.set()
    assert sender.stop()
    spool.close()


def test_stop_returns_within_deadline_s_even_when_the_thread_is_stuck_and_says_so(fake, tmp_path) -> None:
    holder: list[sqlite3.Connection] = []

    def lock_the_spool_then_answer(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and not holder:
            other = sqlite3.connect(tmp_path / "spool.db", check_same_thread=False, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # the acknowledged batch cannot be deleted until it lets go
            holder.append(other)
        return counts_right(handler, body)

    server = fake(lock_the_spool_then_answer)
    sender, spool = spooled(tmp_path, server.url, doses=1, deadline_s=0.5)
    sender.start()
    wait_for(lambda: holder and server.posts() == 1, 5, message="the spool locked by another process")
    try:
        assert sender.stop() is False  # waited deadline_s + 1 for the thread, then said it is still there
    finally:
        holder[0].rollback()
        holder[0].close()
    wait_for(lambda: not sender._thread.is_alive(), 10, message="the thread ends once the lock is gone")
    assert spool.backlog() == 0  # and the acknowledged batch was deleted on its way out
    spool.close()

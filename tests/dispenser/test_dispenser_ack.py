"""The dispenser deletes only what the server acknowledged: fake servers that are not it, the spool checked after."""

from __future__ import annotations

import json
import logging
import select
import threading
import time
import tracemalloc

import pytest

from devkit.servers import wait_for
from tests.helpers.fake_server import EVENTS_PATH, Handler, counts_right
from tests.helpers.rigs import TOKEN

BIG = 50 * 1024 * 1024


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    """Log lines at WARNING or above that contain `text`."""
    return sum(1 for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage())


def test_a_captive_portal_200_deletes_nothing_and_is_logged_once_per_streak(fake, sender_for, caplog):
    caplog.set_level(logging.DEBUG, logger="dispenser")
    portal = fake(lambda h, body: h.send(200, b"<html><body>Welcome, please log in</body></html>",
                                         content_type="text/html"))
    sender, spool = sender_for(portal.url, refill=True)
    wait_for(lambda: portal.posts() >= 4 and portal.posts("/refill") >= 2
             and caplog.text.count("delivery failed dispenser=entree answer not JSON") >= 4, 15,
             message="several tries, each logged")
    assert spool.backlog() == 3
    assert spool.counter("refill_pending") == 1  # a refill stays pending unless properly acknowledged
    assert warnings(caplog, "delivery failed dispenser=entree answer not JSON") == 1  # not once per try
    assert warnings(caplog, "refill failed dispenser=entree answer not JSON") == 1
    # the others at DEBUG (counted in the wait above)
    assert TOKEN not in caplog.text


def test_a_200_counting_another_batch_deletes_nothing_until_the_count_is_right(fake, sender_for, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    right = threading.Event()

    def behave(handler: Handler, body: bytes | None) -> None:
        if handler.path == EVENTS_PATH and not right.is_set():
            return handler.send(200, b'{"accepted": 1, "duplicates": 0}')
        return counts_right(handler, body)

    server = fake(behave)
    sender, spool = sender_for(server.url)
    wait_for(lambda: server.posts() >= 3, 15, message="three tries")
    assert spool.backlog() == 3
    assert warnings(caplog, "delivery failed dispenser=entree answer counts another batch "
                            "accepted=1 duplicates=0 sent=3") == 1
    right.set()
    line = "delivered dispenser=entree events=3 accepted=3 duplicates=0 backlog=0 after_failed_attempts="
    wait_for(lambda: line in caplog.text, 15, message="delivered once the count is right")  # logged after the delete
    assert spool.backlog() == 0


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed_and_the_token_stays_home(fake, sender_for, caplog, status):
    caplog.set_level(logging.INFO, logger="dispenser")
    elsewhere = fake(counts_right)  # a server that would gladly acknowledge anything
    redirecting = fake(lambda h, body: h.send(status, b"", {"Location": elsewhere.url + h.path}))
    sender, spool = sender_for(redirecting.url, refill=True)
    wait_for(lambda: redirecting.posts() >= 3 and redirecting.posts("/refill") >= 2, 15, message="several tries")
    assert spool.backlog() == 3 and spool.counter("refill_pending") == 1
    assert elsewhere.requests == []  # no batch, no heartbeat, no token: nothing at all
    assert warnings(caplog, f"delivery failed dispenser=entree redirect not followed status={status} "
                            f"location='{elsewhere.url}{EVENTS_PATH}'") == 1
    assert warnings(caplog, "heartbeat failed dispenser=entree redirect not followed") == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_a_50_mb_answer_is_read_up_to_the_cap_only(fake, sender_for, caplog, declared):
    caplog.set_level(logging.INFO, logger="dispenser")
    sent: list[int] = []
    block = b"x" * (1024 * 1024)

    def behave(handler: Handler, body: bytes | None) -> None:
        if handler.path != EVENTS_PATH:
            return counts_right(handler, body)
        handler.send_response(200)
        if declared:
            handler.send_header("Content-Length", str(BIG))
        handler.send_header("Connection", "close")
        handler.end_headers()
        total = 0
        try:
            while total < BIG:
                handler.wfile.write(block)
                total += len(block)
        except OSError:  # the dispenser hung up
            pass
        with server.lock:
            sent.append(total)

    server = fake(behave)
    tracemalloc.start()
    try:
        sender, spool = sender_for(server.url)
        wait_for(lambda: len(sent) >= 2, 30, message="two answers sent, or cut short")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert spool.backlog() == 3
    assert all(total < BIG for total in sent), sent  # the dispenser hung up before the end
    assert peak < 16 * 1024 * 1024, peak  # this process never held the 50 MB (the cap is 64 KiB)
    assert warnings(caplog, "delivery failed dispenser=entree answer too large") == 1


@pytest.mark.parametrize("stage", ["status line", "body"])
def test_a_server_dripping_one_byte_every_2_s_does_not_hold_the_sender(fake, sender_for, caplog, stage):
    caplog.set_level(logging.INFO, logger="dispenser")
    cut: list[float] = []  # seconds each dripped answer lasted before the dispenser hung up
    heartbeats_while_dripping = 0
    healed = threading.Event()  # from then on, answer as the usage server does
    stop = threading.Event()

    def behave(handler: Handler, body: bytes | None) -> None:
        nonlocal heartbeats_while_dripping
        if handler.path != EVENTS_PATH or healed.is_set():
            if cut and not healed.is_set():
                with server.lock:
                    heartbeats_while_dripping += handler.path.endswith("/heartbeat")
            return counts_right(handler, body)
        answer = b'{"accepted": 3, "duplicates": 0}'
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(answer)}\r\n\r\n".encode()
        if stage == "body":
            handler.wfile.write(head)
        drip = head + answer if stage == "status line" else answer
        conn, began = handler.connection, time.monotonic()
        for byte in drip:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            # Two seconds to the next byte, unless the client hangs up first (readable with nothing to read).
            readable, _, _ = select.select([conn], [], [], 2.0)
            if readable and not conn.recv(1) or stop.is_set():
                with server.lock:
                    cut.append(time.monotonic() - began)
                return None
        return None  # the whole answer dripped out: the deadline did not hold

    server = fake(behave)
    try:
        # Each byte comes well before timeout_s: only the overall deadline can end the answer.
        sender, spool = sender_for(server.url, timeout_s=5.0, deadline_s=1.0, heartbeat_s=0.2)
        wait_for(lambda: len(cut) >= 3 and heartbeats_while_dripping >= 2, 20,
                 message="three dripped answers cut off, heartbeats sent between them")
        assert spool.backlog() == 3  # a cut answer acknowledges nothing
        healed.set()
        wait_for(lambda: spool.backlog() == 0, 15, message="the next try delivered")
    finally:
        stop.set()
    assert warnings(caplog, "delivery failed dispenser=entree deadline exceeded") == 1
    assert max(cut) < 10, cut  # cut near deadline_s (1 s), not after the whole drip (over a minute)


def test_a_retry_after_of_decades_is_capped_at_15_minutes_and_logged(fake, sender_for, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")

    def behave(handler: Handler, body: bytes | None) -> None:
        if handler.path != EVENTS_PATH:
            return counts_right(handler, body)
        return handler.send(429, b'{"error": "slow down"}', {"Retry-After": "999999999"})

    server = fake(behave)
    sender, spool = sender_for(server.url)
    wait_for(lambda: "delivery deferred" in caplog.text, 15, message="the 429 handled")
    assert "delivery retry_after=999999999s capped to 900s dispenser=entree" in caplog.text
    assert "delivery deferred dispenser=entree status=429 events=3 backlog=3 retry_after=900.0s" in caplog.text
    assert spool.backlog() == 3 and server.posts() == 1


def test_a_429_naming_the_most_a_batch_may_hold_splits_the_batch(fake, sender_for):
    # A server whose rate limit is below the dispenser's batch size says so with `max_batch`: waiting would
    # never help, splitting does.
    sizes: list[int] = []

    def behave(handler: Handler, body: bytes | None) -> None:
        if body is not None and handler.path == EVENTS_PATH:
            sizes.append(len(json.loads(body)))
            if sizes[-1] > 1:
                return handler.send(429, b'{"error": "over the limit", "max_batch": 1}', {"Retry-After": "60"})
        return counts_right(handler, body)

    server = fake(behave)
    sender, spool = sender_for(server.url)
    wait_for(lambda: spool.backlog() == 0, 15, message="every dose delivered")
    assert sizes[0] == 3 and sizes.count(1) == 3  # no waiting out a minute: split at once


def test_a_json_200_from_another_api_acknowledges_no_batch_and_no_refill(fake, sender_for, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    other = fake(lambda h, body: h.send(200, b'{"ok": true, "status": "queued"}'))
    sender, spool = sender_for(other.url, refill=True)
    wait_for(lambda: other.posts() >= 3 and other.posts("/refill") >= 2 and other.posts("/heartbeat") >= 1, 15,
             message="several tries")
    assert spool.backlog() == 3 and spool.counter("refill_pending") == 1
    assert warnings(caplog, "delivery failed dispenser=entree answer without accepted and duplicates counts") == 1
    assert warnings(caplog, "refill failed dispenser=entree answer does not acknowledge it") == 1
    assert "reported=yes" not in caplog.text

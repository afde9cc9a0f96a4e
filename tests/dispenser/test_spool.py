"""The dispenser's spool: what it keeps, in what order, for how long, and how each dose is dated."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime

from gel_dispenser.spool import CLOCK_SANE_AFTER, Spool, new_entries_event, new_event, read_boot_id


def test_doses_come_out_oldest_first_with_their_clock_readings(tmp_path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        events = [new_event(1.5, now=CLOCK_SANE_AFTER + i) for i in range(5)]
        for i, event in enumerate(events):
            spool.add(event, monotonic=100.0 + i, boot="boot-a")
        due = spool.due(3)
        assert [p.event_id for p in due] == [e["event_id"] for e in events[:3]]
        assert [(p.monotonic, p.boot) for p in due] == [(100.0, "boot-a"), (101.0, "boot-a"), (102.0, "boot-a")]
        assert json.loads(due[0].body) == events[0]
        assert spool.pending(2) == [(p.seq, p.event_id, p.body) for p in due[:2]]
        assert spool.backlog() == 5


def test_only_acknowledged_doses_are_forgotten(tmp_path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        for _ in range(4):
            spool.add(new_event(1.5))
        first, second, *rest = spool.due(4)
        spool.delete([first.seq, rest[1].seq])
        assert [p.seq for p in spool.due(10)] == [second.seq, rest[0].seq]
        assert spool.backlog() == 2


def test_quarantined_doses_are_kept_for_a_human_and_never_sent_again(tmp_path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        for dose in (1.5, 999.0, 1.5):
            spool.add(new_event(dose))
        bad = spool.due(3)[1]
        spool.quarantine([bad], 400, "gel_used: too large " + "x" * 1000)
        assert bad.seq not in [p.seq for p in spool.due(10)] and spool.backlog() == 2
        ((event_id, body, status, error),) = spool.quarantined()
        assert (event_id, json.loads(body)["gel_used"], status) == (bad.event_id, 999.0, 400)
        assert error.startswith("gel_used: too large") and len(error) == 500


def test_everything_survives_closing_and_opening_again(tmp_path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as spool:
        spool.add(new_event(1.5), monotonic=5.0, boot="b")
        assert spool.counter("missed") == 0
        assert spool.bump("missed") == 1 and spool.bump("missed", 3) == 4
        spool.set_counter("refill_pending", 1)
        spool.set_counter("refill_pending", 0)
        spool.set_counter("stuck", 1)
    with Spool(path) as spool:
        assert spool.backlog() == 1 and spool.due(1)[0].monotonic == 5.0
        assert (spool.counter("missed"), spool.counter("refill_pending"), spool.counter("stuck")) == (4, 0, 1)


def test_the_spool_is_written_through_to_disk(tmp_path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.add(new_event(1.5))
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: a power cut loses nothing
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_dose_is_dated_only_by_a_clock_that_has_been_set() -> None:
    now = datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=UTC).timestamp()
    event = new_event(1.5, now=now)
    assert event["timestamp"] == "2026-03-02T08:30:15.123+00:00"
    assert (event["gel_used"], event["hands_detected"]) == (1.5, 1)
    assert uuid.UUID(event["event_id"]).version == 4
    assert new_event(1.5, now=now)["event_id"] != event["event_id"]
    assert "timestamp" not in new_event(1.5, now=CLOCK_SANE_AFTER - 1)  # a Pi that booted in 1970
    assert "timestamp" in new_event(1.5, now=CLOCK_SANE_AFTER)
    passages = new_entries_event(3, now=now)
    assert {k: passages[k] for k in ("entries", "timestamp")} == {"entries": 3, "timestamp": event["timestamp"]}
    assert "gel_used" not in passages and "hands_detected" not in passages


def test_the_boot_id_is_the_kernel_s_else_one_per_process(tmp_path) -> None:
    path = tmp_path / "boot_id"
    path.write_text("3f1e\n")
    assert read_boot_id(path) == "3f1e"
    path.write_text("")
    assert read_boot_id(path).startswith("process-")
    assert read_boot_id(tmp_path / "missing").startswith("process-")
    assert read_boot_id(tmp_path / "missing") != read_boot_id(tmp_path / "missing")


def test_a_spool_on_a_fresh_card_creates_its_directories(tmp_path) -> None:
    path = tmp_path / "var" / "lib" / "gel-dispenser" / "spool.db"  # first boot: nothing of it exists yet
    with Spool(path) as spool:
        spool.add(new_event(1.5))
        assert spool.backlog() == 1 and path.exists()


def test_a_dose_waits_out_a_lock_held_longer_than_sqlite_s_default_five_seconds(tmp_path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as spool:
        other = sqlite3.connect(path, check_same_thread=False, isolation_level=None)  # e.g. an operator's requeue
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(5.5, other.commit)  # held past the default's 5 s, well within the spool's 30
        release.start()
        try:
            spool.add(new_event(1.5))  # would raise "database is locked" with the default timeout
        finally:
            release.join()
            other.close()
        assert spool.backlog() == 1

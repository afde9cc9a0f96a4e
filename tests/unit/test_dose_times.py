"""When a dose happened, as the server reads it: age_s first, else the timestamp corrected by the dispenser's clock,
all bounded; every refusal names its field and takes nothing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from app.domain.ingest import MAX_AGE_S, MAX_EVENT_ID, MAX_GEL_ML, clock_offset, parse_events
from app.domain.input import ApiError

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC).timestamp()


def parse(body: object, clock: str | None = None, max_age_days: float = math.inf):
    return parse_events(json.dumps(body).encode(), NOW, clock, max_age_days)


def iso(ts: float, offset: str = "+00:00") -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", offset)


def test_age_s_counts_back_from_now_and_wins_over_the_timestamp() -> None:
    [event] = parse({"gel_used": 1.5, "age_s": 90.5, "timestamp": iso(NOW - 5000)})
    assert event.ts == NOW - 90.5 and event.gel_ul == 1500 and event.hands == 0


def test_the_timestamp_is_corrected_by_the_dispenser_clock() -> None:
    # The dispenser's clock is 10 minutes behind: its "11:49" is the server's 11:59.
    [event] = parse({"gel_used": 1, "timestamp": iso(NOW - 660)}, clock=str(NOW - 600))
    assert event.ts == NOW - 60
    assert clock_offset(None, NOW) == 0.0 and clock_offset(str(NOW + 30), NOW) == -30


def test_without_age_or_timestamp_the_dose_is_now() -> None:
    assert parse([{"gel_used": 1}, {"hands_detected": 1}])[1].ts == NOW


def test_a_timestamp_without_offset_is_utc_whatever_the_machine_zone() -> None:
    [event] = parse({"gel_used": 1, "timestamp": "2026-03-28T11:00:00"})
    assert event.ts == NOW - 3600
    [paris] = parse({"gel_used": 1, "timestamp": "2026-03-28T12:00:00+01:00"})
    assert paris.ts == NOW - 3600


def test_the_edges_of_the_accepted_times() -> None:
    assert parse({"gel_used": 1, "timestamp": "2000-01-01T00:00:00+00:00"})[0].ts == 946684800
    assert parse({"gel_used": 1, "timestamp": iso(NOW + 300)})[0].ts == NOW + 300  # the promise: 5 minutes ahead
    assert parse({"gel_used": 1, "age_s": MAX_AGE_S})[0].ts == NOW - MAX_AGE_S
    assert parse({"gel_used": 1, "age_s": 0})[0].ts == NOW


@pytest.mark.parametrize(("body", "clock", "named"), [
    ({"gel_used": 1, "timestamp": None}, None, "timestamp must be an ISO 8601 string"),
    ({"gel_used": 1, "timestamp": 1774699200}, None, "timestamp must be an ISO 8601 string"),
    ({"gel_used": 1, "timestamp": "yesterday"}, None, "timestamp is not ISO 8601"),
    ({"gel_used": 1, "timestamp": "1999-12-31T23:59:59+00:00"}, None, "out of range"),
    ({"gel_used": 1, "timestamp": iso(NOW + 301)}, None, "5 minutes ahead"),
    ({"gel_used": 1, "timestamp": iso(NOW)}, str(NOW - 10 ** 9), "out of range"),  # a clock far behind
    ({"gel_used": 1}, "noon", "X-Dispenser-Clock"),
    ({"gel_used": 1}, "nan", "X-Dispenser-Clock"),
    ({"gel_used": 1}, "inf", "X-Dispenser-Clock"),
    ({"gel_used": 1, "age_s": -1}, None, "age_s must be"),
    ({"gel_used": 1, "age_s": MAX_AGE_S + 1}, None, "age_s must be"),
    ({"gel_used": 1, "age_s": "60"}, None, "age_s must be"),
    ({"gel_used": 1, "age_s": True}, None, "age_s must be"),
    ({"gel_used": MAX_GEL_ML + 0.001}, None, "gel_used must be"),
    ({"gel_used": -0.5}, None, "gel_used must be"),
    ({"gel_used": 1, "hands_detected": 1.5}, None, "hands_detected must be"),
    ({"gel_used": 1, "entries": 1.5}, None, "entries must be"),
    ({"gel_used": 1, "event_id": "x" * (MAX_EVENT_ID + 1)}, None, "event_id"),
    ([], None, "a batch must hold 1 to"),
    ("gel", None, "body must be a JSON object or an array"),
])
def test_bad_times_and_numbers_are_refused_naming_the_field(body, clock, named) -> None:
    with pytest.raises(ApiError, match=named.replace("(", r"\(")) as refused:
        parse(body, clock)
    assert refused.value.status == 400


def test_a_64_character_event_id_is_kept_and_a_batch_names_the_bad_event() -> None:
    [event] = parse({"gel_used": 1, "event_id": "e" * MAX_EVENT_ID})
    assert event.event_id == "e" * MAX_EVENT_ID
    with pytest.raises(ApiError, match="^event 1: gel_used"):
        parse([{"gel_used": 1}, {"gel_used": -1}])


def test_doses_older_than_max_event_age_days_are_refused() -> None:
    assert parse({"gel_used": 1, "age_s": 86400 * 31 - 1}, max_age_days=31)
    with pytest.raises(ApiError, match="older than max_event_age_days"):
        parse([{"gel_used": 1}, {"gel_used": 1, "age_s": 86400 * 31 + 1}], max_age_days=31)


def test_utc_is_the_servers_choice_not_the_machines_zone(monkeypatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert parse({"gel_used": 1, "timestamp": "2026-03-28T11:00:00"})[0].ts == NOW - 3600
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize(("item", "named"), [
    ({"gel_used": 1, "hands_detected": -1}, "event 1: hands_detected must be an integer from 0 to"),
    ({"gel_used": 1, "entries": 1.5}, "event 1: entries must be an integer, got 1.5"),
    ({"gel_used": "1"}, 'event 1: gel_used must be a number, got "1"'),
    ({"gel_used": 1, "age_s": -1}, "event 1: age_s must be a number from 0 to"),
    ({"gel_used": 1, "timestamp": "then"}, "event 1: timestamp is not ISO 8601: 'then'"),
    ({"gel_used": 1, "timestamp": "1999-01-01T00:00:00+00:00"}, "event 1: timestamp '1999-01-01T00:00:00+00:00' is"),
    ({"gel_used": 1, "colour": "red"}, "event 1: unknown field 'colour' (allowed: "),
])
def test_an_error_in_a_batch_names_the_event_and_the_field(item, named) -> None:
    with pytest.raises(ApiError) as refused:
        parse([{"gel_used": 1}, item])
    assert str(refused.value).startswith(named), str(refused.value)


def test_the_answer_shows_what_was_sent() -> None:
    with pytest.raises(ApiError, match=r"got \[1\]$"):
        parse({"gel_used": [1]})
    with pytest.raises(ApiError, match=r"^dose time 2026-02-24T12:00:00\+00:00 is older than max_event_age_days"):
        parse({"gel_used": 1, "age_s": 86400 * 32}, max_age_days=31)


def test_a_refusal_quotes_at_most_40_characters_of_a_bad_timestamp_and_lists_the_allowed_fields() -> None:
    with pytest.raises(ApiError) as refused:
        parse({"gel_used": 1, "timestamp": "x" * 100})
    assert str(refused.value) == f"timestamp is not ISO 8601: {'x' * 40!r}"
    with pytest.raises(ApiError) as refused:
        parse({"gel_used": 1, "timestamp": "1999-01-01T00:00:00.000000000000000000+00:00"})
    assert str(refused.value).startswith(f"timestamp {'1999-01-01T00:00:00.000000000000000000+00:00'[:40]!r} is")
    with pytest.raises(ApiError) as refused:
        parse({"gel_used": 1, "colour": "red"})
    assert str(refused.value) == ("unknown field 'colour' (allowed: age_s, entries, event_id, gel_used, "
                                  "hands_detected, timestamp)")


def test_a_body_that_is_no_object_and_a_bad_clock_header_are_refused_in_plain_words() -> None:
    with pytest.raises(ApiError) as refused:
        parse_events(b'"a string"', now=NOW)
    assert str(refused.value) == "body must be a JSON object or an array of objects"
    with pytest.raises(ApiError) as refused:
        parse_events(b'{"gel_used": 1}', now=NOW, clock="noon")
    assert str(refused.value) == "X-Dispenser-Clock must be the dispenser's clock in epoch seconds"

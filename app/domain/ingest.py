"""Validation of POST /mettre_a_jour_donnees bodies: every rule, every field named in the error."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from app.domain.input import ApiError, load_json
from app.store import Event

MAX_BATCH = 1000
MAX_GEL_ML = 1000  # per object: a client may sum several doses into one object, never a litre
MAX_HANDS = 1000
MAX_ENTRIES = 1000  # door passages per object (an increment)
MAX_EVENT_ID = 64
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
# After the clock correction a dose time is the server's own within seconds: a later one is forged or broken, and
# would push last_event_at ahead and silence the no-use alert.
FUTURE_SLACK_S = 5 * 60
MAX_AGE_S = 10 * 365 * 86400  # age_s: a dose spooled for ten years is not a dose
FIELDS = {"gel_used", "hands_detected", "entries", "event_id", "timestamp", "age_s"}


def _number(item: dict, key: str, where: str, limit: float, integer: bool) -> float:
    value = item.get(key, 0)
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and isinstance(value, float)):
        raise ApiError(f"{where}{key} must be {kind}, got {json.dumps(value)}")
    if not math.isfinite(value) or value < 0 or value > limit:
        raise ApiError(f"{where}{key} must be {kind} from 0 to {limit}, got {value}")
    return value


def _timestamp(item: dict, where: str, now: float, offset: float) -> float:
    raw = item.get("timestamp")
    if raw is None and "timestamp" not in item:
        return now
    if not isinstance(raw, str):
        raise ApiError(f"{where}timestamp must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(f"{where}timestamp is not ISO 8601: {raw[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ts = parsed.timestamp() + offset  # the dispenser's clock error, from X-Dispenser-Clock
    if not EARLIEST <= ts <= now + FUTURE_SLACK_S:
        raise ApiError(f"{where}timestamp {raw[:40]!r} is out of range (year 2000 to "
                       f"{FUTURE_SLACK_S // 60} minutes ahead of the server, after the clock correction)")
    return ts


def parse_event(item: Any, where: str, now: float, offset: float = 0.0) -> Event:
    """Validate one usage object."""
    if not isinstance(item, dict):
        raise ApiError(f"{where}each event must be a JSON object")
    if not FIELDS.issuperset(item):
        unknown = sorted(set(item) - FIELDS)
        raise ApiError(f"{where}unknown field {unknown[0]!r} (allowed: {', '.join(sorted(FIELDS))})")
    if "gel_used" not in item and "hands_detected" not in item and "entries" not in item:
        raise ApiError(f"{where}gel_used or hands_detected or entries is required")
    gel = _number(item, "gel_used", where, MAX_GEL_ML, integer=False)
    hands = _number(item, "hands_detected", where, MAX_HANDS, integer=True)
    entries = _number(item, "entries", where, MAX_ENTRIES, integer=True)
    event_id = item.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID):
        raise ApiError(f"{where}event_id must be a string of 1 to {MAX_EVENT_ID} characters")
    return Event(gel_ul=round(gel * 1000), hands=int(hands), ts=_event_time(item, where, now, offset),
                 event_id=event_id, entries=int(entries))


def clock_offset(header: str | None, now: float) -> float:
    """Seconds to add to a dispenser's timestamps, from its X-Dispenser-Clock reading (0 without one)."""
    if header is None:
        return 0.0
    try:
        clock = float(header)
    except ValueError:
        clock = math.nan
    if not math.isfinite(clock):
        raise ApiError("X-Dispenser-Clock must be the dispenser's clock in epoch seconds")
    return now - clock


def _event_time(item: dict, where: str, now: float, offset: float) -> float:
    """age_s (monotonic, immune to the dispenser's clock) wins; else the timestamp, corrected by the offset."""
    if "age_s" in item:
        return now - _number(item, "age_s", where, MAX_AGE_S, integer=False)
    return _timestamp(item, where, now, offset)


def parse_events(body: bytes, now: float, clock: str | None = None, max_age_days: float = math.inf) -> list[Event]:
    """Validate a POST body: one object or an array of 1 to MAX_BATCH objects, all or nothing."""
    offset = clock_offset(clock, now)
    data = load_json(body)
    if isinstance(data, dict):
        events = [parse_event(data, "", now, offset)]
    elif not isinstance(data, list):
        raise ApiError("body must be a JSON object or an array of objects")
    elif not 1 <= len(data) <= MAX_BATCH:
        raise ApiError(f"a batch must hold 1 to {MAX_BATCH} events, got {len(data)}")
    else:
        events = [parse_event(item, f"event {i}: ", now, offset) for i, item in enumerate(data)]
    oldest = now - max_age_days * 86400
    for i, event in enumerate(events):
        if event.ts < oldest:  # into weeks long reported: refused, so the dispenser quarantines it and says so
            where = f"event {i}: " if isinstance(data, list) else ""
            raise ApiError(f"{where}dose time {datetime.fromtimestamp(event.ts, UTC).isoformat()} is older than "
                           f"max_event_age_days ({max_age_days:g} days)")
    return events

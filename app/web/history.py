"""The figures over time: `/api/history` (JSON) and `/api/export.csv` (events or buckets), in bounded slots."""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, request

from app.domain.input import ApiError
from app.domain.sheets import inert
from app.extensions import get_config, get_export_slots, get_store
from app.limits import Slot
from app.live.figures import iso
from app.store import Store
from app.store.sums import TEST_PREFIX
from app.web.dates import EARLIEST, LATEST
from app.web.http import (
    EXPORT_RETRY_S,
    allow_origin,
    gzip_if_accepted,
    json_response,
    known_dispenser,
    known_group,
)

log = logging.getLogger(__name__)
bp = Blueprint("history", __name__)
# Default span and the widest span allowed per bucket size, so a query is always bounded.
SPANS = {"minute": (3600, 2 * 86400), "hour": (86400, 93 * 86400), "day": (30 * 86400, 5 * 366 * 86400)}


# The one range of dates the server takes (app/web/dates.py), as instants: from its first day to past its last.
FIRST_TIME = datetime.combine(EARLIEST, datetime.min.time(), UTC).timestamp()
END_TIME = datetime.combine(LATEST + timedelta(days=1), datetime.min.time(), UTC).timestamp()


def _time_arg(name: str, default: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:  # a bare date or time is the site's local time
            value = value.replace(tzinfo=get_store().tz) if get_store().tz else value.astimezone()
        stamp = value.timestamp()
    except (ValueError, OverflowError, OSError):  # also years that fall off the calendar in a time zone
        stamp = math.nan
    if not FIRST_TIME <= stamp < END_TIME:  # as the compliance routes: buckets and file names stay computable
        raise ApiError(f"{name} must be an ISO 8601 date or time between the years 2000 and 2100, got {raw[:40]!r}")
    return stamp


def _scope() -> tuple[str | None, str | None, list[str] | None]:
    """(dispenser, group, the dispensers to sum) from `?dispenser=ID` or `?group=ID`; 404 if unknown, 400 for both.

    A group sums its own dispensers and its descendants'; neither asked: (None, None, None), every dispenser.
    """
    dispenser = known_dispenser(request.args.get("dispenser") or None)
    group = known_group(request.args.get("group") or None)
    if dispenser is not None and group is not None:
        raise ApiError("ask for a dispenser or a group, not both")
    if dispenser is not None:
        return dispenser, None, [dispenser]
    return None, group, get_config().fleet.members[group] if group is not None else None


def _range(bucket: str | None, default_bucket: str = "hour") -> tuple[str, float, float]:
    size = bucket or default_bucket
    if size not in SPANS:
        raise ApiError(f"bucket must be one of {', '.join(SPANS)}, got {size[:20]!r}")
    default_span, widest = SPANS[size]
    end = _time_arg("to", time.time())
    start = _time_arg("from", end - default_span)
    if not start < end:
        raise ApiError("from must be before to")
    if end - start > widest:
        raise ApiError(f"at most {widest // 86400} days of {size} buckets at once")
    return size, start, end


@bp.get("/api/history")
def history() -> Response:
    """Use per minute, hour or local day (a dispenser's, a group's or all), every bucket listed, summed in SQL."""
    dispenser, group, ids = _scope()
    size, start, end = _range(request.args.get("bucket"))
    store = get_store()
    found = {r.start: r for r in store.history(size, store.bucket_start(size, start), end, ids)}
    points = []
    for t in store.bucket_starts(size, start, end):
        r = found.get(t)
        points.append({
            "start": iso(t),
            "gel_used": r.gel_ul / 1000 if r else 0,
            "hands_detected": int(r.hands) if r else 0,
            "events": int(r.events) if r else 0,
        })
    return gzip_if_accepted(allow_origin(json_response(
        {"bucket": size, "from": iso(start), "to": iso(end), "dispenser": dispenser, "group": group,
         "points": points})))


CSV_CHUNK = 500  # rows per write: few system calls, and other requests run between two chunks


class ExportCut(RuntimeError):
    """An export outlived `export_deadline_s`: its connection is cut, so the client cannot take it as whole."""


def _csv_lines(header: list[str], rows: Iterable[list], slot: Slot) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180; a CR in a cell is then quoted too
    rows = itertools.chain([header], rows)
    try:
        while chunk := list(itertools.islice(rows, CSV_CHUNK)):
            if slot.expired:  # its slot went to another export: end this one with an error, never a short file
                log.warning("export cut: still streaming past export_deadline_s, its slot given to another export")
                raise ExportCut("export_deadline_s reached")
            writer.writerows([inert(cell) for cell in row] for row in chunk)
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            # Under eventlet a stream whose writes never block (the socket buffers take megabytes) would keep
            # the hub from every other request until its end: let them run between chunks.
            time.sleep(0)
    finally:
        slot.give()


@bp.get("/api/export.csv")
def export_csv() -> Response:
    """One row per event, or with `bucket=hour|day` one row per period and dispenser; `dispenser` or `group` narrows."""
    ids = _scope()[2]
    bucket = request.args.get("bucket")
    store = get_store()
    slot = get_export_slots().take()
    if slot is None:  # each export streams for as long as its client reads: a bounded number at once
        raise ApiError("too many exports at once, retry later", 503, retry_after=EXPORT_RETRY_S)
    try:
        return _export(store, ids, bucket, slot)
    except BaseException:
        slot.give()
        raise


def _export(store: Store, ids: list[str] | None, bucket: str | None, slot: Slot) -> Response:
    """The CSV answer; `slot` is given back once it is sent or dropped.

    Test-mode events (commissioning) are left out unless `include_test=1`, which adds a `test` column (1 or 0).
    """
    with_test = request.args.get("include_test") in ("1", "true")
    extra = ["test"] if with_test else []
    if bucket:
        size, start, end = _range(bucket)
        found = store.export_buckets(size, start, end, ids, include_test=with_test)
        header, rows = bucket_rows(store, size, found, with_test)
    else:
        size, start, end = _range(None, "day")
        header = ["timestamp", "dispenser", "event_id", "gel_used_ml", "hands_detected", "received_at", "entries",
                  *extra]
        rows = ([iso(r.ts), r.dispenser_id, r.event_id or "", r.gel_ul / 1000, r.hands, iso(r.received_at),
                 r.entries, *([int(r.test)] if with_test else [])]
                for r in store.export_events(start, end, ids, include_test=with_test))
    name = f"usage-{bucket or 'events'}-{datetime.fromtimestamp(start, store.tz).date()}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if not bucket:  # rollups are kept for ever: only the raw events can be missing
        headers.update(retained_from(start))
    resp = Response(_csv_lines(header, rows, slot), mimetype="text/csv", headers=headers)
    resp.call_on_close(slot.give)  # a client that goes away before the end: the stream is closed, never finished
    return resp


def retained_from(start: float) -> dict[str, str]:
    """`X-Events-Retained-From` when a range starts before the raw events retention keeps (else nothing)."""
    keep = get_config().keep_events_days
    if keep is None:
        return {}
    # The purge runs hourly, so some older events may still be there; none newer than this has been deleted.
    cutoff = math.floor(time.time() - keep * 86400)
    return {"X-Events-Retained-From": iso(cutoff) or ""} if start < cutoff else {}


def bucket_rows(store: Store, size: str, found: list, with_test: bool) -> tuple[list[str], list[list]]:
    """Header and rows of a bucket export.

    A day is named by its local date (what a spreadsheet shows: 2026-03-28, not the UTC instant of its local
    midnight, which reads as the day before); the instant stays in a column of its own, period_start, for programs.
    """
    figures = ["dispenser", "gel_used_ml", "hands_detected", "events", "entries"]
    header = ["date", *figures, "period_start"] if size == "day" else ["period_start", *figures]
    rows = []
    for r in found:
        row = [r.dispenser_id, r.gel_ul / 1000, r.hands, r.events, r.entries]
        if size == "day":
            row = [datetime.fromtimestamp(r.start, store.tz).date().isoformat(), *row, iso(r.start)]
        else:
            row = [iso(r.start), *row]
        if with_test:
            row.append(int(r.size.startswith(TEST_PREFIX)))
        rows.append(row)
    return header + (["test"] if with_test else []), rows

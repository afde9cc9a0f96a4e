"""Blueprint: a ward's census (one day, a CSV import, a read) and a dispenser's mode (live or test)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request

from app.config.fleet import csv_lines
from app.domain.input import ApiError
from app.extensions import get_config, get_figures, get_store
from app.live.figures import iso
from app.live.pushes import push_write
from app.store.contact import MODES
from app.store.wards import census_between, set_census
from app.web.audit import record
from app.web.auth import Caller, requires
from app.web.dates import date_range, local_date
from app.web.http import json_body, json_response, known_group

log = logging.getLogger(__name__)
bp = Blueprint("wards", __name__)
MAX_PATIENTS = 100_000
MAX_CENSUS_LINES = 5000  # more than thirteen years of days in one file
CSV_HEADER = ["date", "patients"]


def patients_of(value: object, where: str = "") -> int:
    """A patient count: an integer from 0 to MAX_PATIENTS (400 otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PATIENTS:
        raise ApiError(f"{where}patients must be an integer from 0 to {MAX_PATIENTS}, got {str(value)[:40]}")
    return value


@bp.put("/api/groups/<group_id>/census/<day>")
@requires("admin", "hygiene", "maintenance-token")
def put_census(group_id: str, day: str, by: Caller) -> Response:
    """Set a group's patients on a local day: `{"patients": N}`."""
    known_group(group_id)
    when = local_date(day, "date")
    body = json_body()
    if not isinstance(body, dict) or "patients" not in body:
        raise ApiError('body must be a JSON object {"patients": N}')
    if len(body) > 1:
        raise ApiError(f'unknown key(s) {sorted(set(body) - {"patients"})[:10]}: the body is {{"patients": N}}')
    patients = patients_of(body["patients"])
    before = census_before(group_id, [when.isoformat()])
    set_census(get_store(), group_id, [(when.isoformat(), patients)], by.who)
    record(by, "census.set", group_id, group_id, {"days": changes(before, [(when.isoformat(), patients)])})
    log.info("census group=%s date=%s patients=%d by=%s", group_id, when, patients, by)
    return json_response({"group": group_id, "date": when.isoformat(), "patients": patients})


def census_before(group_id: str, days: list[str]) -> dict[str, int]:
    """The patients recorded for these local dates before a change."""
    rows = census_between(get_store(), [group_id], min(days), max(days))
    return {r.day: r.patients for r in rows}


def changes(before: dict[str, int], after: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Per date: the patients before (None: none recorded) and after."""
    return [{"date": day, "before": before.get(day), "after": patients} for day, patients in after]


def parse_census_csv(body: bytes) -> list[tuple[str, int]]:
    """The (date, patients) lines of a census CSV file, all checked; the error names the line."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError("the census file must be UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != CSV_HEADER:
            raise ApiError(f"line 1: the header must be {','.join(CSV_HEADER)}")
        return _census_lines(reader)
    except csv.Error as exc:
        raise ApiError(f"line {reader.line_num}: {exc}") from None


def _lines(reader: Any) -> Iterator[tuple[str, list[str]]]:
    try:
        yield from csv_lines(reader, len(CSV_HEADER))
    except ValueError as exc:  # a line of the wrong width
        raise ApiError(f"{exc} (date,patients)") from None


def _census_lines(reader: Any) -> list[tuple[str, int]]:
    rows: dict[str, int] = {}
    for line, (raw_day, raw_count) in _lines(reader):
        where = f"{line}: "
        try:
            day = local_date(raw_day, "date").isoformat()
        except ApiError as exc:
            raise ApiError(f"{where}{exc}") from None
        if day in rows:
            raise ApiError(f"{where}date {day} is given twice")
        if not raw_count.isascii() or not raw_count.isdigit():
            raise ApiError(f"{where}patients must be an integer from 0 to {MAX_PATIENTS}, got {raw_count[:40]!r}")
        rows[day] = patients_of(int(raw_count), where)
        if len(rows) > MAX_CENSUS_LINES:
            raise ApiError(f"{where}at most {MAX_CENSUS_LINES} days per file")
    if not rows:
        raise ApiError("the census file holds no line after its header")
    return sorted(rows.items())


@bp.post("/api/groups/<group_id>/census.csv")
@requires("admin", "hygiene", "maintenance-token")
def import_census(group_id: str, by: Caller) -> Response:
    """Set a group's census from a CSV file `date,patients` (one line per local day), all or nothing."""
    known_group(group_id)
    if request.mimetype not in ("text/csv", "text/plain"):
        raise ApiError("Content-Type must be text/csv", status=415)
    rows = parse_census_csv(request.get_data(cache=False))
    before = census_before(group_id, [d for d, _ in rows])
    set_census(get_store(), group_id, rows, by.who)
    record(by, "census.import", group_id, group_id, {"days": changes(before, rows)})
    log.info("census import group=%s days=%d from=%s to=%s by=%s", group_id, len(rows), rows[0][0], rows[-1][0], by)
    return json_response({"group": group_id, "imported": len(rows), "from": rows[0][0], "to": rows[-1][0]})


@bp.get("/api/groups/<group_id>/census")
def get_census(group_id: str) -> Response:
    """A group's own census from `from` to `to` (local dates, both included; default the last 31 days)."""
    known_group(group_id)
    first, last = date_range(31, 3660)
    rows = census_between(get_store(), [group_id], first.isoformat(), last.isoformat())
    return json_response({"group": group_id, "from": first.isoformat(), "to": last.isoformat(),
                          "days": [{"date": r.day, "patients": r.patients, "by": r.by, "updated_at": iso(r.updated_at)}
                                   for r in rows]})


@bp.post("/api/dispensers/<dispenser:dispenser_id>/mode")
@requires("admin", "maintenance")
def set_mode(dispenser_id: str, by: Caller) -> Response:
    """`{"mode": "test"}` while installers try a dispenser (its events are kept apart), `{"mode": "live"}` after."""
    body = json_body()
    mode = body.get("mode") if isinstance(body, dict) else None
    if mode not in MODES:
        raise ApiError(f'body must be {{"mode": "test"}} or {{"mode": "live"}}, got mode {str(mode)[:20]!r}')
    before = get_figures().payload(dispenser_id)["dispensers"][0]["mode"]
    get_store().set_mode(dispenser_id, mode)
    record(by, "mode", dispenser_id, get_config().fleet.group_of.get(dispenser_id), {"before": before, "after": mode})
    log.info("mode dispenser=%s mode=%s by=%s", dispenser_id, mode, by)
    push_write()  # the dashboards show the dispenser in its new mode
    return json_response({"dispenser": get_figures().payload(dispenser_id)["dispensers"][0]})

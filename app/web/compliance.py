"""Blueprint: compliance rates per day or week (JSON or CSV) and the weekly report of a group (JSON or CSV)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, request

from app.domain.compliance import BUCKETS, compliance
from app.domain.input import ApiError
from app.domain.sheets import PERIOD_COLUMNS, csv_text, report_rows
from app.domain.weekly import weekly_report
from app.extensions import get_config, get_store
from app.web.dates import date_range, iso_week, today
from app.web.http import gzip_if_accepted, json_response, known_group

bp = Blueprint("rates", __name__)
# Default and widest span (days) per bucket, so that a query is always bounded.
SPANS = {"day": (7, 732), "week": (56, 1100)}


def csv_response(header: list[str], rows: Iterable[dict[str, Any]], name: str) -> Response:
    """A CSV attachment with these columns, one line per row (keys a row lacks are empty cells)."""
    return Response(csv_text(header, rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def wants_csv(csv_route: bool) -> bool:
    """The CSV form was asked for: by its route or `format=csv`."""
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(f"format must be json or csv, got {fmt[:20]!r}")
    return csv_route or fmt == "csv"


@bp.get("/api/compliance")
@bp.get("/api/compliance.csv", endpoint="compliance_csv")
def compliance_rates() -> Response:
    """Rates of a group (`group`, default every dispenser) per local day or ISO week from `from` to `to`."""
    group = known_group(request.args.get("group") or None)
    bucket = request.args.get("bucket", "day")
    if bucket not in BUCKETS:
        raise ApiError(f"bucket must be day or week, got {bucket[:20]!r}")
    default_days, widest = SPANS[bucket]
    first, last = date_range(default_days, widest)
    if bucket == "week" and not request.args.get("from"):
        first -= timedelta(days=first.weekday())  # the default span starts on a Monday
    answer = compliance(get_store(), get_config(), group, first, last, bucket)
    if wants_csv(request.path.endswith(".csv")):
        header = [c for c in PERIOD_COLUMNS if bucket == "week" or c not in ("week", "end")]
        return csv_response(header, answer["rows"], f"compliance-{group or 'all'}-{bucket}-{first}.csv")
    return gzip_if_accepted(json_response(answer))


@bp.get("/api/report")
@bp.get("/api/report.csv", endpoint="report_csv")
def report() -> Response:
    """The weekly report of a group: `week=YYYY-Www` (default this week) and the weeks before it."""
    group = known_group(request.args.get("group") or None)
    raw = request.args.get("week")
    day = today()  # read once: two reads either side of midnight would give a Sunday for the Monday
    monday = iso_week(raw) if raw else day - timedelta(days=day.weekday())
    answer = weekly_report(get_store(), get_config(), group, monday)
    if not wants_csv(request.path.endswith(".csv")):
        return gzip_if_accepted(json_response(answer))
    header, rows = report_rows(answer)
    return csv_response(header, rows, f"report-{group or 'all'}-{answer['week']}.csv")

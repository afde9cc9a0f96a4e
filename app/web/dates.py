"""The dates routes take: local dates in URLs and queries, ISO weeks, ranges; all within 2000-2100."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from flask import request

from app.domain.input import ApiError
from app.extensions import get_store

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
WEEK = re.compile(r"(\d{4})-W(\d{2})")
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def local_date(raw: str | None, name: str) -> date:
    """A local date written YYYY-MM-DD (400 otherwise), between the years 2000 and 2100."""
    try:
        if raw is None or not DATE.fullmatch(raw):
            raise ValueError
        day = date.fromisoformat(raw)
    except ValueError:
        raise ApiError(f"{name} must be a date written YYYY-MM-DD, got {str(raw)[:40]!r}") from None
    if not EARLIEST <= day <= LATEST:
        raise ApiError(f"{name} must be a date from {EARLIEST} to {LATEST}")
    return day


def iso_week(raw: str | None, name: str = "week") -> date:
    """The Monday of an ISO week written YYYY-Www (400 otherwise)."""
    found = WEEK.fullmatch(raw or "")
    try:
        if found is None:
            raise ValueError
        monday = date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        raise ApiError(f"{name} must be an ISO week written YYYY-Www (e.g. 2026-W13), got {str(raw)[:40]!r}") from None
    if not EARLIEST <= monday <= LATEST:
        raise ApiError(f"{name} must be a week from the year {EARLIEST.year} to {LATEST.year}")
    return monday


def today() -> date:
    """The local date now, in the site's zone (or the machine's)."""
    return datetime.now(get_store().tz).date()


def date_range(default_days: int, widest_days: int) -> tuple[date, date]:
    """`from` and `to` (local dates, both included): by default the `default_days` up to today."""
    raw_to, raw_from = request.args.get("to"), request.args.get("from")
    last = local_date(raw_to, "to") if raw_to else today()
    first = local_date(raw_from, "from") if raw_from else last - timedelta(days=default_days - 1)
    if first > last:
        raise ApiError("from must not be after to")
    if (last - first).days + 1 > widest_days:
        raise ApiError(f"at most {widest_days} days at once")
    return first, last

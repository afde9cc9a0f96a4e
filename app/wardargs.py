"""What the ward routes share: local dates in URLs and queries, and the staff tokens (admin or maintenance)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from flask import Response, request

from app.http import ApiError, bearer_token, caller_dispenser, is_admin, is_maintenance
from app.services import get_store

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


def staff() -> str:
    """Who sends this request: "admin" or "maintenance"; 401 without a known token, 403 for a dispenser's."""
    if is_admin():
        return "admin"
    if is_maintenance():
        return "maintenance"
    if bearer_token() is None:
        raise ApiError("missing Authorization: Bearer <admin or maintenance token> header", status=401)
    caller_dispenser()  # 401 for an unknown token
    raise ApiError("a dispenser's token may not do this: use the admin or maintenance token", status=403)


def staff_required(view: Callable[..., Response]) -> Callable[..., Response]:
    """The view is called with `by`: "admin" or "maintenance" (401/403 for anyone else)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Response:
        return view(*args, by=staff(), **kwargs)

    return checked

"""Dates: local-day buckets across DST and in half- and quarter-hour zones, default windows, the CSV by day."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app import create_app
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS


def iso(ts: float) -> str:
    """The server's date format: UTC, milliseconds, Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(text: str) -> dict:
    """One use at a UTC time given as `2026-03-10T18:30:00`."""
    return {"gel_used": 1, "hands_detected": 1, "timestamp": text + "Z"}


@pytest.fixture
def client_in(write_config) -> Callable:
    """client_in(timezone) -> a test client of an app whose [server] timezone is `timezone`."""

    def make(timezone: str):
        app = create_app(write_config(timezone=timezone))
        app.config["TESTING"] = True
        return app.test_client()

    return make


def post(client, events: list[dict], dispenser: str = "entree") -> None:
    resp = client.post("/mettre_a_jour_donnees", json=events, headers=bearer(TOKENS[dispenser]))
    assert resp.status_code == 200, resp.get_data(as_text=True)


def days(client, query: str) -> list[tuple[str, int]]:
    resp = client.get(f"/api/history?bucket=day&{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [(p["start"], p["events"]) for p in resp.get_json()["points"]]


@pytest.mark.parametrize(("zone", "events", "query", "expected"), [
    # Paris springs forward on 2026-03-29: that day is 23 hours long, its midnight 22:00Z the next day.
    ("Europe/Paris", ["2026-03-28T22:30:00", "2026-03-28T23:30:00", "2026-03-29T21:30:00", "2026-03-29T22:30:00"],
     "from=2026-03-28&to=2026-03-31",
     [("2026-03-27T23:00:00.000Z", 1), ("2026-03-28T23:00:00.000Z", 2), ("2026-03-29T22:00:00.000Z", 1)]),
    # ... and falls back on 2026-10-25: 25 hours, the next midnight at 23:00Z.
    ("Europe/Paris", ["2026-10-24T21:59:00", "2026-10-24T22:00:00", "2026-10-25T22:59:00", "2026-10-25T23:00:00"],
     "from=2026-10-24&to=2026-10-27",
     [("2026-10-23T22:00:00.000Z", 1), ("2026-10-24T22:00:00.000Z", 2), ("2026-10-25T23:00:00.000Z", 1)]),
    # +05:30: a local day starts at 18:30Z the day before.
    ("Asia/Kolkata", ["2026-03-09T18:29:00", "2026-03-09T18:31:00", "2026-03-10T18:29:59", "2026-03-10T18:30:00"],
     "from=2026-03-09&to=2026-03-12",
     [("2026-03-08T18:30:00.000Z", 1), ("2026-03-09T18:30:00.000Z", 2), ("2026-03-10T18:30:00.000Z", 1)]),
    # +05:45: at 18:15Z.
    ("Asia/Kathmandu", ["2026-03-09T18:14:00", "2026-03-09T18:15:00", "2026-03-10T18:14:59", "2026-03-10T18:16:00"],
     "from=2026-03-09&to=2026-03-12",
     [("2026-03-08T18:15:00.000Z", 1), ("2026-03-09T18:15:00.000Z", 2), ("2026-03-10T18:15:00.000Z", 1)]),
    # -03:30 with DST (St. John's springs forward on 2026-03-08).
    ("America/St_Johns", ["2026-03-08T03:29:00", "2026-03-08T03:31:00", "2026-03-09T02:29:00", "2026-03-09T02:31:00"],
     "from=2026-03-07&to=2026-03-10",
     [("2026-03-07T03:30:00.000Z", 1), ("2026-03-08T03:30:00.000Z", 2), ("2026-03-09T02:30:00.000Z", 1)]),
])
def test_day_buckets_are_local_days(client_in, zone, events, query, expected):
    client = client_in(zone)
    post(client, [at(e) for e in events])
    assert days(client, query) == expected
    # The per-dispenser query and the other dispensers' rows follow the same local days.
    post(client, [at(events[1])], dispenser="b12")
    assert days(client, query + "&dispenser=b12") == [(s, int(i == 1)) for i, (s, _) in enumerate(expected)]


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "Europe/Paris"])
def test_the_csv_by_day_has_one_row_per_local_day_and_dispenser(client_in, zone):
    client = client_in(zone)
    tz = ZoneInfo(zone)
    midnight = datetime(2026, 3, 10, tzinfo=tz)  # local midnights, whatever the offset
    just_before, just_after = midnight - timedelta(seconds=30), midnight + timedelta(seconds=30)
    stamp = "%Y-%m-%dT%H:%M:%S"
    post(client, [at(just_before.astimezone(UTC).strftime(stamp)), at(just_after.astimezone(UTC).strftime(stamp)),
                  at(just_after.astimezone(UTC).strftime(stamp))])
    post(client, [at(just_after.astimezone(UTC).strftime(stamp))], dispenser="cafeteria")
    resp = client.get("/api/export.csv?bucket=day&from=2026-03-09&to=2026-03-11")
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    day9, day10 = iso(datetime(2026, 3, 9, tzinfo=tz).timestamp()), iso(midnight.timestamp())
    # A day is named by its local date; the instant its local day starts has a column of its own.
    assert rows == [["date", "dispenser", "gel_used_ml", "hands_detected", "events", "entries", "period_start"],
                    ["2026-03-09", "entree", "1.0", "1", "1", "0", day9],
                    ["2026-03-10", "cafeteria", "1.0", "1", "1", "0", day10],
                    ["2026-03-10", "entree", "2.0", "2", "2", "0", day10]]
    # The file is named after the first local day asked for, not after the server machine's date for it.
    assert 'filename="usage-day-2026-03-09.csv"' in resp.headers["Content-Disposition"]


def test_bare_dates_are_midnights_of_the_configured_zone(client_in):
    body = client_in("Asia/Kathmandu").get("/api/history?bucket=hour&from=2026-03-10&to=2026-03-10T01:00").get_json()
    assert (body["from"], body["to"]) == ("2026-03-09T18:15:00.000Z", "2026-03-09T19:15:00.000Z")


def hour_floor(ts: float) -> float:
    return ts // 3600 * 3600


def test_default_windows_of_the_history(client_in):
    client = client_in("Asia/Kolkata")
    now = time.time()
    post(client, [{"gel_used": 1, "hands_detected": 1, "timestamp": iso(now - h * 3600)} for h in (0, 23, 26)]
         + [{"gel_used": 1, "hands_detected": 1, "timestamp": iso(now - d * 86400)} for d in (29, 32)])
    before = time.time()
    hours = client.get("/api/history").get_json()
    after = time.time()
    to = datetime.fromisoformat(hours["to"]).timestamp()
    assert hours["bucket"] == "hour" and before - 0.001 <= to <= after
    assert datetime.fromisoformat(hours["from"]).timestamp() == pytest.approx(to - 86400, abs=0.002)
    starts = [datetime.fromisoformat(p["start"]).timestamp() for p in hours["points"]]
    assert starts[0] == hour_floor(to - 86400) and starts[-1] == hour_floor(to)
    assert sum(p["events"] for p in hours["points"]) == 2  # now and 23 h ago; not 26 h ago

    minutes = client.get("/api/history?bucket=minute").get_json()
    assert len(minutes["points"]) in (60, 61) and sum(p["events"] for p in minutes["points"]) == 1

    daily = client.get("/api/history?bucket=day").get_json()
    to = datetime.fromisoformat(daily["to"]).timestamp()
    local = datetime.fromtimestamp(to - 30 * 86400, ZoneInfo("Asia/Kolkata"))
    assert daily["points"][0]["start"] == iso(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    assert len(daily["points"]) == 31
    assert sum(p["events"] for p in daily["points"]) == 4  # all but the one 32 days ago


def test_default_windows_of_the_export(client_in):
    client = client_in("Asia/Kathmandu")
    now = time.time()
    post(client, [{"gel_used": 1, "hands_detected": 1, "event_id": f"{d}d", "timestamp": iso(now - d * 86400)}
                  for d in (0, 0.5, 29, 31)])
    events = list(csv.reader(io.StringIO(client.get("/api/export.csv").get_data(as_text=True))))
    assert sorted(r[2] for r in events[1:]) == ["0.5d", "0d", "29d"]  # thirty days of events by default
    hourly = list(csv.reader(io.StringIO(client.get("/api/export.csv?bucket=hour").get_data(as_text=True))))
    assert [r[4] for r in hourly[1:]] == ["1", "1"]  # one day of hours: now and 12 h ago

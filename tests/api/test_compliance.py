"""Compliance rates through the HTTP API: a simulated week in Paris gives known rates exactly; outages flag days."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_app

PARIS = ZoneInfo("Europe/Paris")
MONDAY = date(2026, 3, 23)  # ISO week 2026-W13; its Sunday, 29 March, has 23 hours (summer time starts)
WEEK = [MONDAY + timedelta(days=i) for i in range(7)]
# Ward A per day (Monday first), worked out by hand below: hands, entries, census.
HANDS = [50, 60, 70, 80, 90, 40, 40]
ENTRIES = [100, 100, 100, 100, 100, 100, 50]
CENSUS = [10, 10, 10, 10, 10, 10, 8]


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A local time in Paris."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PARIS)


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dose(when: datetime, hands: int) -> dict:
    """`hands` uses summed into one object (1.5 ml each), as a dispenser may send them."""
    return {"hands_detected": hands, "gel_used": 1.5 * hands, "timestamp": stamp(when)}


def post(client, body, dispenser: str) -> None:
    resp = client.post("/mettre_a_jour_donnees", json=body, headers=bearer(TOKENS[dispenser]))
    assert resp.status_code == 200, resp.get_json()


def contacts(app: Flask, skip: dict[str, set[datetime]]) -> None:
    """Every dispenser calls every 4 hours from Sunday 22 March 20:00 to Sunday 29 20:00 (a simulated clock), but
    for the calls in `skip`."""
    store = app.extensions["usage_store"]
    calls = [at(MONDAY - timedelta(days=1), 20)] + [at(d, h) for d in WEEK for h in (0, 4, 8, 12, 16, 20)]
    for ident in TOKENS:
        for when in calls:
            if when not in skip.get(ident, set()):
                store.heartbeat(ident, None, None, None, now=when.timestamp())


@contextmanager
def simulated_week(tmp_path, database: str = "sqlite:///usage.db") -> Iterator[Flask]:
    """The simulated week: contacts (entree silent Wednesday 08:00 to 20:00), doses, entries and the census."""
    with ward_app(tmp_path, database=database, timezone="Europe/Paris", offline_after_s=6 * 3600) as app:
        client = app.test_client()
        contacts(app, {"entree": {at(WEEK[2], 12), at(WEEK[2], 16)}})
        for day, hands, entries, census in zip(WEEK, HANDS, ENTRIES, CENSUS, strict=True):
            # Just after and just before local midnight: each lands in its own local day.
            post(client, [dose(at(day, 0, 0, 30), 20), {"entries": entries, "timestamp": stamp(at(day, 12))}],
                 "entree")
            post(client, dose(at(day, 23, 59, 30), hands - 20), "cafeteria")
            assert client.put(f"/api/groups/ward-a/census/{day}", json={"patients": census},
                              headers=bearer(ADMIN)).status_code == 200
        # Outside the week: a minute before it starts and a minute after it ends.
        post(client, [dose(at(MONDAY, 0) - timedelta(minutes=1), 5), dose(at(WEEK[-1] + timedelta(days=1), 0, 1), 5)],
             "entree")
        post(client, [dose(at(WEEK[2], 10), 500)] * 2, "b12")  # ward B: another ward, counted at the site only
        client.put(f"/api/groups/ward-b/census/{WEEK[2]}", json={"patients": 5}, headers=bearer(ADMIN))
        yield app


@pytest.fixture
def week(tmp_path) -> Iterator[Flask]:
    """The simulated week on SQLite."""
    with simulated_week(tmp_path) as app:
        yield app


@pytest.fixture
def week_on_both(tmp_path, database_url) -> Iterator[Flask]:
    """The simulated week on SQLite and on PostgreSQL."""
    with simulated_week(tmp_path, database_url) as app:
        yield app


def rates(client, query: str) -> dict:
    resp = client.get(f"/api/compliance?{query}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_simulated_week_gives_known_rates_per_day(week_on_both):
    answer = rates(week_on_both.test_client(), "group=ward-a&from=2026-03-23&to=2026-03-29&bucket=day")
    assert {k: answer[k] for k in ("group", "name", "bucket", "from", "to", "target_pct",
                                   "opportunities_per_patient_day", "reference_ml_per_patient_day", "ward_type")} == {
        "group": "ward-a", "name": "Ward A", "bucket": "day", "from": "2026-03-23", "to": "2026-03-29",
        "target_pct": 80.0, "opportunities_per_patient_day": 10.0, "reference_ml_per_patient_day": 137.0,
        "ward_type": "icu"}
    got = [(r["start"], r["hands"], r["gel_ml"], r["entries"], r["entry_rate_pct"], r["patient_days"],
            r["expected_opportunities"], r["compliance_pct"], r["ml_per_patient_day"], r["offline_dispensers"])
           for r in answer["rows"]]
    # By hand: 10 patients x 10 opportunities = 100 a day (Sunday 8 x 10 = 80); 1.5 ml per hand.
    assert got == [
        ("2026-03-23", 50, 75.0, 100, 50.0, 10, 100.0, 50.0, 7.5, []),
        ("2026-03-24", 60, 90.0, 100, 60.0, 10, 100.0, 60.0, 9.0, []),
        ("2026-03-25", 70, 105.0, 100, 70.0, 10, 100.0, 70.0, 10.5, ["entree"]),  # silent 14:00-20:00
        ("2026-03-26", 80, 120.0, 100, 80.0, 10, 100.0, 80.0, 12.0, []),
        ("2026-03-27", 90, 135.0, 100, 90.0, 10, 100.0, 90.0, 13.5, []),
        ("2026-03-28", 40, 60.0, 100, 40.0, 10, 100.0, 40.0, 6.0, []),
        ("2026-03-29", 40, 60.0, 50, 80.0, 8, 80.0, 50.0, 7.5, []),
    ]
    assert [r["offline"] for r in answer["rows"]] == [False, False, True, False, False, False, False]
    assert not any(r["partial"] for r in answer["rows"])


def test_the_same_week_in_one_row(week):
    (row,) = rates(week.test_client(), "group=ward-a&from=2026-03-23&to=2026-03-29&bucket=week")["rows"]
    # 430 hands, 650 entries, 645 ml, 68 patient-days, 680 opportunities: 430/680 = 63.235 %, 430/650 = 66.154 %,
    # 645/68 = 9.485 ml.
    assert row == {"start": "2026-03-23", "week": "2026-W13", "end": "2026-03-29", "days": 7, "days_so_far": 7,
                   "hands": 430, "gel_ml": 645.0, "entries": 650, "entry_rate_pct": 66.15, "patient_days": 68,
                   "census_days": 7, "census_missing": [],
                   "expected_opportunities": 680.0, "compliance_pct": 63.24, "ml_per_patient_day": 9.49,
                   "offline": True, "offline_dispensers": ["entree"], "partial": False, "no_dispensers_yet": False}


def test_a_parent_group_sums_its_wards_census(week):
    client = week.test_client()
    rows = {r["start"]: r for r in rates(client, "group=site&from=2026-03-24&to=2026-03-25")["rows"]}
    # Wednesday: ward A 10 patients x 10 + ward B 5 x 20 = 200 opportunities for 70 + 1000 hands.
    wednesday = rows["2026-03-25"]
    assert (wednesday["hands"], wednesday["patient_days"], wednesday["expected_opportunities"],
            wednesday["compliance_pct"]) == (1070, 15, 200.0, 535.0)
    # Tuesday ward B (b12) has no census: the site's patients are unknown, not ward A's alone.
    assert (rows["2026-03-24"]["patient_days"], rows["2026-03-24"]["expected_opportunities"]) == (None, None)
    assert (rows["2026-03-24"]["census_missing"], wednesday["census_missing"]) == (["ward-b"], [])
    ward_b = rates(client, "group=ward-b&from=2026-03-24&to=2026-03-25&bucket=week")["rows"][0]
    # A week with one census day of two has no rate: never a rate from part of the denominator.
    assert (ward_b["census_days"], ward_b["days"], ward_b["compliance_pct"], ward_b["ml_per_patient_day"]) == (
        1, 2, None, None)
    assert ward_b["start"] == "2026-03-24" and ward_b["week"] == "2026-W13"


def test_a_parent_group_has_no_rate_while_a_ward_with_dispensers_lacks_its_census(week):
    """Every hand of the site over ward A's patients alone would be an inflated rate: none until ward B counts."""
    client = week.test_client()
    post(client, dose(at(WEEK[3], 10), 100), "b12")  # Thursday: ward B is used, its census is not given
    thursday = "group=site&from=2026-03-26&to=2026-03-26"
    (row,) = rates(client, thursday)["rows"]
    assert (row["hands"], row["gel_ml"]) == (180, 270.0)
    assert (row["compliance_pct"], row["ml_per_patient_day"], row["census_days"]) == (None, None, 0)
    assert row["census_missing"] == ["ward-b"]
    (fleet,) = rates(client, "from=2026-03-26&to=2026-03-26")["rows"]  # every dispenser: the same
    assert (fleet["compliance_pct"], fleet["census_missing"]) == (None, ["ward-b"])
    (week_row,) = rates(client, "group=site&from=2026-03-23&to=2026-03-29&bucket=week")["rows"]
    assert (week_row["census_days"], week_row["compliance_pct"], week_row["census_missing"]) == (1, None, ["ward-b"])
    assert client.put(f"/api/groups/ward-b/census/{WEEK[3]}", json={"patients": 5},
                      headers=bearer(ADMIN)).status_code == 200
    (row,) = rates(client, thursday)["rows"]
    # 180 hands ÷ (10 x 10 + 5 x 20) opportunities; 270 ml ÷ 15 patients.
    assert (row["compliance_pct"], row["ml_per_patient_day"], row["census_missing"]) == (90.0, 18.0, [])
    lines = list(csv.DictReader(io.StringIO(client.get(f"/api/compliance.csv?{thursday}").get_data(as_text=True))))
    assert lines[0]["census_missing"] == ""


def test_the_csv_form_holds_the_same_rows(week):
    client = week.test_client()
    resp = client.get("/api/compliance.csv?group=ward-a&from=2026-03-23&to=2026-03-29")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["start"] for r in rows] == [d.isoformat() for d in WEEK]
    assert (rows[2]["compliance_pct"], rows[2]["offline"], rows[2]["offline_dispensers"]) == ("70.0", "true", "entree")
    again = client.get("/api/compliance?group=ward-a&from=2026-03-23&to=2026-03-29&format=csv")
    assert again.get_data() == resp.get_data()


def test_the_weekly_report(week):
    client = week.test_client()
    report = client.get("/api/report?group=ward-a&week=2026-W13").get_json()
    assert (report["week"], report["from"], report["to"], report["target_pct"]) == (
        "2026-W13", "2026-03-23", "2026-03-29", 80.0)
    assert report["summary"]["compliance_pct"] == 63.24
    assert [w["week"] for w in report["previous"]] == [f"2026-W{n:02d}" for n in range(5, 13)]  # the page's eight
    assert [w["hands"] for w in report["previous"]] == [0] * 7 + [5]  # the dose a minute before Monday
    assert [d["start"] for d in report["days"]] == [d.isoformat() for d in WEEK]
    by_id = {d["id"]: d for d in report["dispensers"]}
    assert set(by_id) == {"entree", "cafeteria"}
    assert (by_id["entree"]["offline_s"], by_id["cafeteria"]["offline_s"]) == (6 * 3600, 0)
    assert (by_id["entree"]["hands"], by_id["cafeteria"]["hands"]) == (140, 290)
    lines = list(csv.DictReader(io.StringIO(client.get("/api/report.csv?group=ward-a&week=2026-W13").get_data(
        as_text=True))))
    assert [r["section"] for r in lines] == ["week"] + ["previous"] * 8 + ["day"] * 7 + ["dispenser"] * 2
    assert (lines[0]["compliance_pct"], lines[0]["target_pct"], lines[0]["reference_ml_per_patient_day"]) == (
        "63.24", "80.0", "137.0")
    assert {(r["dispenser"], r["offline_s"]) for r in lines[-2:]} == {("entree", "21600"), ("cafeteria", "0")}


@pytest.mark.parametrize(("query", "status"), [
    ("group=nowhere", 404), ("bucket=month", 400), ("from=2026-03-10&to=2026-03-01", 400), ("from=2026-3-1", 400),
    ("from=2020-01-01&to=2026-01-01", 400), ("format=xml", 400),
])
def test_bad_compliance_queries(week, query, status):
    resp = week.test_client().get(f"/api/compliance?{query}")
    assert resp.status_code == status and resp.get_json()["error"]


@pytest.mark.parametrize(("query", "status"), [("week=2026-13", 400), ("week=2026-W54", 400), ("group=zz", 404)])
def test_bad_report_queries(week, query, status):
    assert week.test_client().get(f"/api/report?{query}").status_code == status


def test_an_outage_seen_live_flags_today(tmp_path):
    """A real silence longer than offline_after_s, ended by a POST, flags today for that dispenser."""
    with ward_app(tmp_path, timezone="Europe/Paris", offline_after_s=0.3) as app:
        client = app.test_client()
        post(client, {"gel_used": 1, "hands_detected": 1}, "entree")
        wait_for(lambda: not client.get("/obtenir_donnees_utilisation?dispenser=entree").get_json()[
            "dispensers"][0]["online"], message="entree offline")
        post(client, {"entries": 2}, "entree")
        today = datetime.now(PARIS).date()
        rows = rates(client, f"group=ward-a&from={today - timedelta(days=1)}&to={today}")["rows"]
        assert "entree" in rows[1]["offline_dispensers"] and rows[1]["partial"]
        # Before its first contact, entree is no outage; cafeteria, never heard from, is offline all along.
        assert rows[0]["offline_dispensers"] == ["cafeteria"] and rows[0]["no_dispensers_yet"]
        assert (rows[1]["hands"], rows[1]["entries"], rows[1]["entry_rate_pct"]) == (1, 2, 50.0)


def test_this_weeks_rates_count_its_days_so_far_in_the_report_as_in_the_rates(tmp_path):
    with ward_app(tmp_path, timezone="Europe/Paris") as app:
        client = app.test_client()
        today = datetime.now(PARIS).date()
        monday, so_far = today - timedelta(days=today.weekday()), today.weekday() + 1
        post(client, dose(datetime.now(PARIS), 30), "entree")
        for day in [monday + timedelta(days=i) for i in range(so_far + 1)]:  # and tomorrow's, given ahead
            assert client.put(f"/api/groups/ward-a/census/{day}", json={"patients": 5},
                              headers=bearer(ADMIN)).status_code == 200
        report = client.get("/api/report?group=ward-a").get_json()
        summary = report["summary"]
        # 30 hands ÷ (5 patients x 10 opportunities x the days so far); 45 ml ÷ (5 x the days so far).
        assert (summary["compliance_pct"], summary["ml_per_patient_day"]) == (
            round(3000 / (50 * so_far), 2), round(45 / (5 * so_far), 2))
        assert (summary["partial"], summary["days"], summary["days_so_far"], summary["census_days"]) == (
            True, 7, so_far, so_far)
        week = f"group=ward-a&from={monday}&to={monday + timedelta(days=6)}&bucket=week"
        assert rates(client, week)["rows"] == [summary]
        (up_to_today,) = rates(client, f"group=ward-a&from={monday}&to={today}&bucket=week")["rows"]
        assert (up_to_today["compliance_pct"], up_to_today["days_so_far"]) == (summary["compliance_pct"], so_far)
        # A day to come has no rate, even with its census given ahead (never 0 % before it began).
        for row in report["days"][so_far:]:
            assert (row["compliance_pct"], row["patient_days"], row["days_so_far"]) == (None, None, 0)


def test_the_report_names_a_dispenser_that_ran_empty(tmp_path):
    with ward_app(tmp_path, timezone="Europe/Paris") as app:
        client = app.test_client()
        post(client, [{"gel_used": 300, "hands_detected": 1}] * 2, "b12")  # 600 ml from a 500 ml reservoir

        def b12(query: str = "") -> dict:
            report = client.get(f"/api/report?group=ward-b{query}").get_json()
            assert report["summary"]["partial"] is (query == "")
            return {d["id"]: d for d in report["dispensers"]}["b12"]

        assert (b12()["ran_empty"], b12()["refills"], b12()["hands"]) == (True, 0, 2)  # at 0 % now
        assert client.post("/api/dispensers/b12/refill", headers=bearer(ADMIN)).status_code == 200
        assert (b12()["ran_empty"], b12()["refills"]) == (True, 1)  # the refill found it used up
        monday = datetime.now(PARIS).date() - timedelta(days=datetime.now(PARIS).weekday())
        last = (monday - timedelta(days=7)).isocalendar()
        before = b12(f"&week={last.year}-W{last.week:02d}")
        # Last week: no use, no refill, and no outage (a dispenser is not offline before its first contact).
        assert (before["ran_empty"], before["refills"], before["hands"], before["offline"]) == (False, 0, 0, False)


def test_days_before_a_wards_first_dose_or_entry_say_no_dispensers_yet(week):
    """Issue 23 item 5: ward B's first dose is on Wednesday: Monday and Tuesday are "no dispensers yet", neither
    zero use nor lacking a census (though still days of the week, whose rate needs every day's)."""
    client = week.test_client()
    days = rates(client, "group=ward-b&from=2026-03-23&to=2026-03-29&bucket=day")["rows"]
    assert [r["no_dispensers_yet"] for r in days] == [True, True, False, False, False, False, False]
    for r in days[:2]:
        assert (r["hands"], r["census_missing"]) == (0, []), r
    assert days[2]["hands"] == 1000
    (row,) = rates(client, "group=ward-b&from=2026-03-23&to=2026-03-29&bucket=week")["rows"]
    assert row["no_dispensers_yet"] is False and row["census_missing"] == ["ward-b"]  # Thursday on, no census
    before = rates(client, "group=ward-b&from=2026-03-09&to=2026-03-22&bucket=week")["rows"]
    assert [r["no_dispensers_yet"] for r in before] == [True, True]
    # Ward A's first dose was a minute before the week: none of its days, nor the site's, is before it.
    for group in ("ward-a", "site"):
        rows = rates(client, f"group={group}&from=2026-03-22&to=2026-03-29&bucket=day")["rows"]
        assert not any(r["no_dispensers_yet"] for r in rows), group

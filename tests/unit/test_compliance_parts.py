"""The parts of the compliance figures: silences, the census down a group's tree, how days add up into weeks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.config import load_config
from app.domain.compliance import Census, Period, compliance, midnight, offline_intervals, weekly
from app.store import Event
from app.store.wards import census_between, set_census
from tests.helpers.wards import ward_app, ward_config_text

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
DAY = "2026-03-02"


def test_a_silent_dispenser_is_offline_from_offline_after_s_and_one_never_heard_from_all_along(tmp_path) -> None:
    with ward_app(tmp_path, offline_after_s=180) as app:
        store, cfg = app.extensions["usage_store"], app.extensions["usage_config"]
        for at in (T - 7200, T - 3000):  # b12 was silent in between: a recorded outage, in another ward
            store.ingest("b12", [Event(gel_ul=1000, hands=1, ts=at)], now=at)
        store.ingest("entree", [Event(gel_ul=1000, hands=1, ts=T)], now=T)
        found = offline_intervals(store, cfg, ["entree", "cafeteria"], T - 10_000, T + 600)
        assert found == {"entree": [(T + 180, T + 600)], "cafeteria": [(float("-inf"), T + 600)]}
        assert "entree" not in offline_intervals(store, cfg, ["entree"], T - 10_000, T + 180)  # just at the limit
        assert offline_intervals(store, cfg, None, T - 10_000, T + 10)["b12"] == [
            (T - 7200 + 180, T - 3000), (T - 3000 + 180, T + 10)]  # the recorded one, and the one going on


def day(first: date, **figures) -> Period:
    """One day's Period, as daily() builds it."""
    return Period(first, 1, days_so_far=1, **figures)


def test_a_week_adds_its_days_and_keeps_what_any_day_lacks() -> None:
    days = [day(date(2026, 3, 2), gel_ul=1000, hands=2, entries=4, patient_days=5, expected=50.0, census_days=1,
                census_missing={"ward-a"}),
            day(date(2026, 3, 3), gel_ul=500, hands=1, entries=2, census_missing={"ward-b"}, expected=None)]
    (week,) = weekly(days)
    assert (week.days, week.gel_ul, week.hands, week.entries, week.patient_days) == (2, 1500, 3, 6, 5)
    assert week.census_missing == {"ward-a", "ward-b"} and week.expected is None
    (both,) = weekly([day(date(2026, 3, 2), expected=10.5, census_days=1),
                      day(date(2026, 3, 3), expected=20.25, census_days=1)])
    assert both.expected == 30.75


@pytest.mark.parametrize("befores, week_is_before", [
    ((True, True), True), ((False, True), False), ((True, False), False)])
def test_a_week_is_before_the_first_dose_only_if_each_of_its_days_is(befores, week_is_before) -> None:
    days = [day(date(2026, 3, 2 + i), before_first=b) for i, b in enumerate(befores)]
    assert weekly(days)[0].before_first is week_is_before
    assert weekly(days)[0].row("week")["no_dispensers_yet"] is week_is_before


def test_a_row_rounds_its_rates_and_has_none_for_a_day_to_come() -> None:
    row = day(date(2026, 3, 2), hands=7, entries=9, patient_days=3, expected=12.345678, census_days=1,
              census_by=("nadia", T)).row("day")
    assert row["expected_opportunities"] == 12.35 and row["compliance_pct"] == 56.68  # of the rounded count
    assert row["entry_rate_pct"] == 77.78
    assert (row["census_by"], row["census_at"]) == ("nadia", "2026-03-02T12:00:00Z")
    to_come = Period(date(2026, 3, 9), 1, days_so_far=0, partial=True).row("day")
    assert to_come["expected_opportunities"] is None and to_come["compliance_pct"] is None
    assert "census_by" not in to_come and to_come["patient_days"] is None


def census_of(tmp_path, text: str, entered: dict[str, int]) -> Census:
    """A Census on the wards config (as changed by the test), with these groups' patients on DAY."""
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)
    with ward_app(tmp_path) as app:
        store = app.extensions["usage_store"]
        for group, patients in entered.items():
            set_census(store, group, [(DAY, patients)], by="nadia", now=T)
        return Census(cfg, census_between(store, None, DAY, DAY))


def test_the_census_down_the_tree(tmp_path) -> None:
    text = ward_config_text(database=f"sqlite:///{tmp_path / 'usage.db'}")
    census = census_of(tmp_path, text, {"ward-a": 4, "ward-b": 6})
    assert census.of("ward-a", DAY) == ((4, 40.0), [])
    assert census.of("site", DAY) == ((10, 4 * 10 + 6 * 20.0), [])  # the wards' sum, each at its own rate
    assert census.of(None, DAY) == ((10, 160.0), [])
    assert census.of("ward-a", "2026-03-03") == (None, ["ward-a"])


def test_without_opportunities_a_census_gives_patients_but_no_expected_count(tmp_path) -> None:
    text = ward_config_text(database=f"sqlite:///{tmp_path / 'usage.db'}").replace(
        "opportunities_per_patient_day = 20\n", "")
    census = census_of(tmp_path, text, {"ward-a": 4, "ward-b": 6, "site": 12})
    assert census.of("ward-b", DAY) == ((6, None), [])
    assert census.of("site", DAY) == ((12, None), [])  # its own census; no rate of its own either
    del census.patients[("site", DAY)]
    assert census.of("site", DAY) == ((10, None), [])  # one ward without a rate: the sum has none


def test_a_fleet_without_groups_lacks_no_census(tmp_path) -> None:
    from tests.helpers.config import config_text

    path = tmp_path / "config.toml"
    path.write_text(config_text(database=f"sqlite:///{tmp_path / 'usage.db'}"), encoding="utf-8")
    assert Census(load_config(path), []).of(None, DAY) == (None, [])


def test_the_last_day_ends_at_local_midnight_west_of_utc(tmp_path) -> None:
    zone = ZoneInfo("America/Los_Angeles")
    evening = datetime(2026, 3, 2, 20, 0, tzinfo=zone).timestamp()  # already the 3rd in UTC
    with ward_app(tmp_path, timezone="America/Los_Angeles") as app:
        store, cfg = app.extensions["usage_store"], app.extensions["usage_config"]
        store.ingest("entree", [Event(gel_ul=1000, hands=1, ts=evening)], now=evening)
        rows = compliance(store, cfg, "ward-a", date(2026, 3, 2), date(2026, 3, 2), "day", now=evening + 60)["rows"]
    assert (rows[0]["hands"], rows[0]["partial"]) == (1, True)  # 20:00 there: the day is not over


def test_the_figures_are_as_of_the_instant_asked(tmp_path) -> None:
    with ward_app(tmp_path) as app:
        store, cfg = app.extensions["usage_store"], app.extensions["usage_config"]
        noon = midnight(date(2026, 3, 2), store.tz) + 12 * 3600
        during = compliance(store, cfg, "ward-a", date(2026, 3, 2), date(2026, 3, 3), "day", now=noon)["rows"]
    assert [(r["partial"], r["days_so_far"]) for r in during] == [(True, 1), (True, 0)]


def test_at_midnight_the_day_that_ended_is_whole_and_the_new_one_has_begun(tmp_path) -> None:
    with ward_app(tmp_path) as app:
        store, cfg = app.extensions["usage_store"], app.extensions["usage_config"]
        night = midnight(date(2026, 3, 3), store.tz)
        set_census(store, "ward-a", [("2026-03-03", 5)], by="nadia", now=night)
        rows = compliance(store, cfg, "ward-a", date(2026, 3, 2), date(2026, 3, 3), "day", now=night)["rows"]
    first, second = rows
    assert (first["partial"], first["days_so_far"]) == (False, 1)
    assert (first["gel_ml"], first["hands"], first["entries"]) == (0, 0, 0)  # a day without a use: zeros
    assert (second["partial"], second["days_so_far"], second["patient_days"]) == (True, 1, 5)
    assert second["census_by"] == "nadia"


def test_a_silence_that_begins_or_ends_at_midnight_is_the_other_day_s(tmp_path) -> None:
    with ward_app(tmp_path, offline_after_s=180) as app:
        store, cfg = app.extensions["usage_store"], app.extensions["usage_config"]
        night = midnight(date(2026, 3, 3), store.tz)
        store.ingest("entree", [Event(gel_ul=1000, hands=1, ts=night - 180)], now=night - 180)  # silent from 0:00
        for at in (night - 1180, night, night + 150, night + 300, night + 450, night + 590):
            store.refill("cafeteria", by="admin", now=at)  # a silence that ends at 0:00, then heard throughout
        rows = compliance(store, cfg, "ward-a", date(2026, 3, 2), date(2026, 3, 3), "day", now=night + 600)["rows"]
    assert [r["offline_dispensers"] for r in rows] == [["cafeteria"], ["entree"]]


def test_an_outage_on_the_first_day_asked_flags_it(tmp_path) -> None:
    with ward_app(tmp_path, offline_after_s=3000) as app:
        store, cfg = app.extensions["usage_store"], app.extensions["usage_config"]
        start = midnight(date(2026, 3, 2), store.tz)
        for at in (start + 600, start + 7200):  # entree: silent from 1:10 to 2:00
            store.ingest("entree", [Event(gel_ul=1000, hands=1, ts=at)], now=at)
        for at in (start + 600, start + 3000, start + 5400, start + 7200):
            store.ingest("cafeteria", [Event(gel_ul=1000, hands=1, ts=at)], now=at)
        rows = compliance(store, cfg, "ward-a", date(2026, 3, 2), date(2026, 3, 3), "day", now=start + 7260)["rows"]
    assert [r["offline_dispensers"] for r in rows] == [["entree"], []]


@pytest.mark.parametrize("group, settings", [
    ("ward-a", {"name": "Ward A", "path": ["Site", "Ward A"], "target_pct": 80, "ward_type": "icu",
                "opportunities_per_patient_day": 10, "reference_ml_per_patient_day": 137.0}),
    ("ward-b", {"name": "Ward B", "path": ["Site", "Ward B"], "ward_type": "intermediate",
                "reference_ml_per_patient_day": 71.0}),
    ("site", {"name": "Site", "path": ["Site"], "ward_type": None, "reference_ml_per_patient_day": None}),
    (None, {"name": None, "path": [], "ward_type": None}),
])
def test_each_answer_names_its_group_and_the_reference_for_its_kind_of_ward(tmp_path, group, settings) -> None:
    text = ward_config_text(database=f"sqlite:///{tmp_path / 'usage.db'}").replace(
        'ward_type = "regular"', 'ward_type = "intermediate"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)
    with ward_app(tmp_path) as app:
        answer = compliance(app.extensions["usage_store"], cfg, group, date(2026, 3, 2), date(2026, 3, 2), "day",
                            now=T)
    assert {k: answer[k] for k in settings} == settings and answer["group"] == group

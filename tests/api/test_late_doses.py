"""Doses that arrive late: too old ones refused, and the weekly report saying how many came after its week."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from app.config import load_config
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS, config_text
from tests.helpers.wards import ward_app


def stamp(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()


def post(client: FlaskClient, *days_ago: float):
    body = [{"gel_used": 1.0, "hands_detected": 1, "timestamp": stamp(d)} for d in days_ago]
    return client.post("/mettre_a_jour_donnees", json=body, headers=bearer(TOKENS["entree"]))


@pytest.fixture
def client(tmp_path) -> Iterator[FlaskClient]:
    with ward_app(tmp_path, max_event_age_days=31) as app:
        yield app.test_client()


def test_the_default_limit_is_31_days(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(config_text().replace("max_event_age_days = 100000\n", ""), encoding="utf-8")
    assert load_config(path).max_event_age_days == 31


def test_a_dose_older_than_the_limit_is_refused_and_nothing_of_its_batch_counted(client):
    resp = post(client, 0, 32)
    assert resp.status_code == 400
    assert resp.get_json()["error"].startswith("event 1: dose time") and "max_event_age_days (31 days)" in \
        resp.get_json()["error"]
    assert client.get("/obtenir_donnees_utilisation").get_json()["hands_detected"] == 0
    assert post(client, 30).status_code == 200


def test_the_report_counts_the_doses_of_its_week_that_came_after_it(client):
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday() + 14)  # two weeks back: long over
    week = monday.isocalendar()
    given = (datetime.now(UTC).date() - (monday + timedelta(days=2))).days  # a Wednesday of that week
    assert post(client, given, given + 0.5).status_code == 200  # a spool delivered two weeks late
    assert post(client, 0).status_code == 200  # today's: on time
    report = client.get(f"/api/report?group=ward-a&week={week.year}-W{week.week:02d}").get_json()
    assert report["late"]["late"] == 2 and report["late"]["after_week"] == 2
    last = datetime.fromisoformat(report["late"]["last_after_week"])
    assert abs((datetime.now(UTC) - last).total_seconds()) < 60
    this_week = client.get("/api/report?group=ward-a").get_json()["late"]
    assert this_week == {"late": 0, "after_week": 0, "last_after_week": None}

"""Formats checked by their own tools, on a real server process: /metrics by promtool, the CSV exports read back by
Python's csv module (columns, types, formula-like text neutralised), the weekly report's HTML by the Nu Html
Checker (vnu.jar, pinned in tests/node/package-lock.json, run by the machine's Java)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import requests
import socketio

from devkit.servers import ROOT, ServerProcess
from tests.helpers.auth import bearer
from tests.helpers.ci import skip_or_fail
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_config_text

VNU = ROOT / "tests" / "node" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
# prometheus-client's classic text format, which generate_latest() writes (its CONTENT_TYPE_PLAIN_0_0_4): once.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# What a spreadsheet would run: a dispenser's name and event ids. Each must come back behind a quote.
CAFETERIA = '=HYPERLINK("http://x";"Cafétéria")'
B12 = "+33 Salle B12"
EVENTS = {"entree": "=1+1", "cafeteria": "-2", "b12": "@SUM(A1)"}


@pytest.fixture
def server(tmp_path: Path, server_factory) -> ServerProcess:
    """The wards config (tests/helpers/wards.py) with formula-like names, on a real eventlet server, with a use per
    dispenser (formula-like event ids), a census for ward-a and a refill."""
    text = ward_config_text(database="sqlite:///usage.db", async_mode="eventlet")
    text = text.replace('name = "Cafétéria"', f"name = '{CAFETERIA}'").replace('name = "Salle B12"', f'name = "{B12}"')
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    server = server_factory(config=config)
    for dispenser, event_id in EVENTS.items():
        resp = requests.post(server.url + "/mettre_a_jour_donnees", headers=bearer(TOKENS[dispenser]), timeout=10,
                             json={"gel_used": 1.5, "hands_detected": 1, "event_id": event_id})
        assert resp.status_code == 200, resp.text
    resp = requests.put(f"{server.url}/api/groups/ward-a/census/{date.today()}", json={"patients": 12},
                        headers=bearer(ADMIN), timeout=10)
    assert resp.status_code == 200, resp.text
    assert requests.post(server.url + "/api/dispensers/b12/refill", headers=bearer(ADMIN), timeout=10).ok
    return server


def test_metrics_pass_promtool_with_one_content_type(server):
    if not shutil.which("promtool"):
        skip_or_fail("no promtool (apt-get install prometheus)")
    dashboard = socketio.Client(reconnection=False)
    dashboard.connect(server.url, transports=["websocket"], wait_timeout=10)
    try:
        requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": -1}, timeout=10,
                      headers=bearer(TOKENS["entree"]))  # a rejection counted
        resp = requests.get(server.url + "/metrics", timeout=10)
    finally:
        dashboard.disconnect()
    assert resp.status_code == 200 and resp.headers["Content-Type"] == METRICS_TYPE
    for line in ('gel_events_ingested_total{dispenser="entree"} 1.0', "gel_dashboards_connected 1.0",
                 'gel_requests_rejected_total{reason="invalid"} 1.0'):
        assert line in resp.text
    checked = subprocess.run(["promtool", "check", "metrics"], input=resp.content, capture_output=True, timeout=60)
    assert checked.returncode == 0 and not checked.stdout.strip(), (checked.stdout, checked.stderr)


def iso_instant(value: str) -> datetime:
    """An instant as the exports write them: ISO 8601 in UTC with milliseconds and a Z."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value), value
    return datetime.fromisoformat(value)


def integer(value: str) -> int:
    assert re.fullmatch(r"-?\d+", value), value
    return int(value)


def boolean(value: str) -> bool:
    assert value in ("true", "false"), value
    return value == "true"


def week(value: str) -> str:
    assert re.fullmatch(r"\d{4}-W\d\d", value), value
    return value


def ids(value: str) -> list[str]:
    names = value.split(" ")
    assert set(names) <= {"entree", "cafeteria", "b12", "site", "ward-a", "ward-b"}, value
    return names


DISPENSERS = {"entree", "cafeteria", "b12"}
TYPES: dict[str, Callable[[str], object]] = {
    "timestamp": iso_instant, "received_at": iso_instant, "period_start": iso_instant,
    "date": date.fromisoformat, "start": date.fromisoformat, "end": date.fromisoformat, "week": week,
    "dispenser": lambda v: v in DISPENSERS or pytest.fail(f"unknown dispenser {v!r}"),
    "event_id": str, "name": str, "mode": lambda v: v in ("live", "test") or pytest.fail(v),
    "section": lambda v: v in ("week", "previous", "day", "dispenser") or pytest.fail(v),
    "gel_used_ml": float, "gel_ml": float, "entry_rate_pct": float, "expected_opportunities": float,
    "compliance_pct": float, "target_pct": float, "ml_per_patient_day": float, "reference_ml_per_patient_day": float,
    "offline_s": float,
    "hands_detected": integer, "hands": integer, "events": integer, "entries": integer, "test": integer,
    "days": integer, "days_so_far": integer, "patient_days": integer, "census_days": integer, "refills": integer,
    "offline": boolean, "partial": boolean, "ran_empty": boolean,
    "census_missing": ids, "offline_dispensers": ids,
}


def read_csv(server: ServerProcess, path: str, columns: list[str], required: set[str]) -> list[dict[str, str]]:
    """GET a CSV export and read it back with the csv module: its columns in order, every cell of its type."""
    resp = requests.get(server.url + path, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/csv; charset=utf-8", resp.headers
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="')
    reader = csv.DictReader(io.StringIO(resp.content.decode("utf-8"), newline=""), strict=True)
    rows = list(reader)
    assert reader.fieldnames == columns and rows, (path, reader.fieldnames)
    for row in rows:
        assert None not in row and None not in row.values(), row  # as many cells as columns, in every line
        for column, value in row.items():
            if value:
                TYPES[column](value)
            else:
                assert column not in required, (path, column, row)
    return rows


def test_the_event_export_reads_back_what_was_posted_with_formulas_neutralised(server):
    columns = ["timestamp", "dispenser", "event_id", "gel_used_ml", "hands_detected", "received_at", "entries"]
    rows = read_csv(server, "/api/export.csv", columns, set(columns))
    assert {(r["dispenser"], r["event_id"]) for r in rows} == {(d, "'" + e) for d, e in EVENTS.items()}
    assert {(float(r["gel_used_ml"]), int(r["hands_detected"]), int(r["entries"])) for r in rows} == {(1.5, 1, 0)}
    assert all(iso_instant(r["timestamp"]) <= iso_instant(r["received_at"]) for r in rows)


@pytest.mark.parametrize(("path", "columns"), [
    ("/api/export.csv?bucket=day", ["date", "dispenser", "gel_used_ml", "hands_detected", "events", "entries",
                                    "period_start"]),
    ("/api/export.csv?bucket=hour&include_test=1", ["period_start", "dispenser", "gel_used_ml", "hands_detected",
                                                    "events", "entries", "test"]),
])
def test_the_bucket_exports_read_back_with_their_types(server, path, columns):
    rows = read_csv(server, path, columns, set(columns))
    assert sorted(r["dispenser"] for r in rows) == sorted(DISPENSERS)
    assert {(float(r["gel_used_ml"]), int(r["events"])) for r in rows} == {(1.5, 1)}


PERIOD = ["start", "days", "days_so_far", "hands", "gel_ml", "entries", "entry_rate_pct", "patient_days",
          "census_days", "census_missing", "expected_opportunities", "compliance_pct", "ml_per_patient_day", "offline",
          "offline_dispensers", "partial"]


def test_the_compliance_exports_read_back_with_their_types(server):
    always = {"start", "days", "days_so_far", "hands", "gel_ml", "entries", "census_days", "offline", "partial"}
    days = read_csv(server, "/api/compliance.csv?group=ward-a", PERIOD, always)
    today = days[-1]
    assert (int(today["hands"]), int(today["patient_days"]), today["census_missing"]) == (2, 12, "")
    assert float(today["compliance_pct"]) == round(100 * 2 / 120, 2) and float(today["expected_opportunities"]) == 120
    weeks = read_csv(server, "/api/compliance.csv?bucket=week", PERIOD[:1] + ["week", "end"] + PERIOD[1:],
                     always | {"week", "end"})
    assert int(weeks[-1]["hands"]) == 3 and ids(weeks[-1]["census_missing"]) == ["ward-b"]
    assert weeks[0]["census_missing"] == ""  # weeks before the wards' first use: no dispenser yet, no census asked


def test_the_report_export_reads_back_with_its_types_and_neutralised_names(server):
    columns = ["section", *PERIOD[:PERIOD.index("compliance_pct") + 1], "target_pct", "ml_per_patient_day",
               "reference_ml_per_patient_day", *PERIOD[PERIOD.index("offline"):], "dispenser", "name", "mode",
               "offline_s", "refills", "ran_empty"]
    columns.insert(2, "week")
    columns.insert(3, "end")
    rows = read_csv(server, "/api/report.csv?group=site", columns, {"section", "start", "hands", "offline"})
    sections = [r["section"] for r in rows]
    assert sections == ["week"] + ["previous"] * 8 + ["day"] * 7 + ["dispenser"] * 3
    names = {r["dispenser"]: r["name"] for r in rows if r["section"] == "dispenser"}
    assert names == {"entree": "Entrée", "cafeteria": "'" + CAFETERIA, "b12": "'" + B12}
    assert {r["dispenser"]: int(r["refills"]) for r in rows if r["section"] == "dispenser"}["b12"] == 1
    ward = read_csv(server, "/api/report.csv?group=ward-a", columns, {"section", "start", "hands", "offline"})
    assert {float(r["target_pct"]) for r in ward if r["section"] != "dispenser"} == {80.0}


def test_the_weekly_report_is_valid_html(server, tmp_path):
    if not shutil.which("java"):
        skip_or_fail("no Java runtime for the Nu Html Checker (apt-get install default-jre-headless)")
    if not VNU.is_file():
        skip_or_fail("tests/node/node_modules missing: run `npm ci --ignore-scripts --prefix tests/node`")
    last_week = (date.today() - timedelta(days=7)).strftime("%G-W%V")
    pages = []
    for i, path in enumerate(["/rapport?group=ward-a", "/rapport", f"/rapport?group=site&week={last_week}&lang=en",
                              "/journal", "/?group=nowhere"]):
        resp = requests.get(server.url + path, timeout=10)
        assert resp.status_code == (404 if "nowhere" in path else 200), path
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        pages.append(tmp_path / f"report-{i}.html")
        pages[-1].write_bytes(resp.content)
    # Every message fails, warnings and "info" included: the checker has nothing to say about a good page.
    checked = subprocess.run(["java", "-jar", str(VNU), "--format", "json", "--also-check-css", *map(str, pages)],
                             capture_output=True, text=True, timeout=180)
    answer = json.loads(checked.stderr)  # the checker writes its report there
    assert answer["version"] and answer["messages"] == [] and checked.returncode == 0, answer

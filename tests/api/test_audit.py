"""People and the audit trail: who changed what, before and after, readable by the right people only."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.config import ConfigError, load_config
from app.live.reload import reload_config
from devkit.servers import ROOT
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_config_text

PEOPLE = {"-nadia": ("hygiene", [], "token-of-nadia-hygiene-01"),
          "marc": ("maintenance", [], "token-of-marc-maint-002"),
          "hana": ("hygiene", ["ward-b"], "token-of-hana-wardb-0003")}


def staff_text(people: dict = PEOPLE) -> str:
    return "".join(f'\n[[server.staff]]\nid = "{i}"\nname = "{i.strip("-").title()}"\nrole = "{role}"\n'
                   f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\ngroups = {groups!r}\n'
                   .replace("'", '"') for i, (role, groups, token) in people.items())


@pytest.fixture
def made(tmp_path: Path, database_url: str) -> Iterator[tuple[Flask, Path]]:
    """An app with wards and three people, on SQLite or PostgreSQL, with its config file."""
    path = tmp_path / "config.toml"
    path.write_text(ward_config_text(database=database_url, maintenance_token="shared-maintenance-00000")
                    + staff_text(), encoding="utf-8")
    app = create_app(load_config(path))
    yield app, path
    app.extensions["usage_store"].engine.dispose()


def trail(client, token: str = ADMIN, **query: str) -> list[dict]:
    answer = client.get("/api/audit", query_string={"from": "2000-01-01", "to": "2100-01-01", **query},
                        headers=bearer(token))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["entries"]


def test_every_change_records_who_from_where_and_before_and_after(made) -> None:
    app, _ = made
    client = app.test_client()
    nadia, marc = PEOPLE["-nadia"][2], PEOPLE["marc"][2]
    forwarded = {"X-Forwarded-For": "10.1.2.3"}
    assert client.put("/api/groups/ward-a/census/2026-03-02", json={"patients": 12},
                      headers={**bearer(nadia), **forwarded}).status_code == 200
    assert client.put("/api/groups/ward-a/census/2026-03-02", json={"patients": 14},
                      headers=bearer(nadia)).status_code == 200
    assert client.post("/api/dispensers/entree/mode", json={"mode": "test"}, headers=bearer(marc)).status_code == 200
    client.post("/mettre_a_jour_donnees", json={"gel_used": 60}, headers=bearer(TOKENS["cafeteria"]))
    assert client.post("/api/dispensers/cafeteria/refill", headers=bearer(marc)).status_code == 200
    assert client.post("/api/dispensers/b12/refill", headers=bearer("shared-maintenance-00000")).status_code == 200
    entries = trail(client)
    assert [(e["who"], e["action"], e["target"]) for e in entries] == [
        ("shared maintenance token", "refill", "b12"), ("marc", "refill", "cafeteria"), ("marc", "mode", "entree"),
        ("-nadia", "census.set", "ward-a"), ("-nadia", "census.set", "ward-a")]
    assert entries[1]["detail"] == {"before": {"level_pct": 80.0}, "after": {"level_pct": 100.0}}
    assert entries[2]["detail"] == {"before": "live", "after": "test"} and entries[2]["group"] == "ward-a"
    assert entries[3]["detail"] == {"days": [{"date": "2026-03-02", "before": 12, "after": 14}]}
    assert entries[4]["detail"] == {"days": [{"date": "2026-03-02", "before": None, "after": 12}]}
    # From this host (nginx in front), the hop it forwarded for is where the person was; else the address itself.
    assert (entries[4]["address"], entries[3]["address"]) == ("10.1.2.3", "127.0.0.1")
    assert entries[4]["role"] == "hygiene"
    # The refill list names the person.
    assert client.get("/api/dispensers/cafeteria/refills").get_json()["refills"][0]["by"] == "marc"


def test_reading_the_audit_is_for_admin_and_hygiene_within_their_groups(made) -> None:
    app, _ = made
    client = app.test_client()
    nadia, marc, hana = (PEOPLE[p][2] for p in ("-nadia", "marc", "hana"))
    client.put("/api/groups/ward-a/census/2026-03-02", json={"patients": 12}, headers=bearer(nadia))
    client.put("/api/groups/ward-b/census/2026-03-02", json={"patients": 7}, headers=bearer(hana))
    assert client.put("/api/groups/ward-a/census/2026-03-03", json={"patients": 7},
                      headers=bearer(hana)).status_code == 403  # outside her groups
    assert {e["group"] for e in trail(client, hana) if e["action"] != "refused"} == {"ward-b"}
    assert client.get("/api/audit?group=ward-a", headers=bearer(hana)).status_code == 403
    assert client.get("/api/audit", headers=bearer(marc)).status_code == 403  # maintenance reads no audit
    assert {e["group"] for e in trail(client, nadia, group="ward-a")} == {"ward-a"}
    refused = [e for e in trail(client) if e["action"] == "refused"]
    assert len(refused) == 1 and refused[0]["who"] == "hana" and refused[0]["detail"]["status"] == 403


def test_refused_staff_actions_are_recorded_once_per_address_and_cost_nothing_else(made) -> None:
    app, _ = made
    client = app.test_client()
    for _ in range(20):  # a script trying tokens: one entry, not twenty
        assert client.put("/api/groups/ward-a/census/2026-03-02", json={"patients": 1},
                          headers=bearer("not-a-token-of-anyone")).status_code == 401
    client.get("/obtenir_donnees_utilisation")
    client.get("/")
    client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=bearer(TOKENS["entree"]))
    entries = trail(client)
    assert [(e["action"], e["who"], e["detail"]["status"]) for e in entries] == [("refused", "unknown", 401)]


def test_no_route_changes_the_audit_and_its_csv_is_neutralised(made) -> None:
    app, _ = made
    client = app.test_client()
    client.put("/api/groups/ward-a/census/2026-03-02", json={"patients": 12}, headers=bearer(PEOPLE["-nadia"][2]))
    before = trail(client)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.open("/api/audit", method=method, headers=bearer(ADMIN)).status_code == 405
    assert trail(client) == before
    text = client.get("/api/audit.csv?from=2000-01-01&to=2100-01-01", headers=bearer(ADMIN)).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["who"] == "'-nadia"  # a spreadsheet would read -nadia as a formula


def test_a_rotated_persons_token_is_refused_after_the_reload(made, tmp_path) -> None:
    app, path = made
    client = app.test_client()
    old = PEOPLE["marc"][2]
    assert client.post("/api/dispensers/entree/mode", json={"mode": "live"}, headers=bearer(old)).status_code == 200
    people = {**PEOPLE, "marc": ("maintenance", [], "token-of-marc-rotated-09")}
    text = path.read_text(encoding="utf-8").split("\n[[server.staff]]")[0] + staff_text(people)
    path.write_text(text, encoding="utf-8")
    found = reload_config(app, path)
    assert found is not None and found.staff_tokens_rotated == ["marc"]
    assert client.post("/api/dispensers/entree/mode", json={"mode": "live"}, headers=bearer(old)).status_code == 401
    assert client.post("/api/dispensers/entree/mode", json={"mode": "live"},
                       headers=bearer("token-of-marc-rotated-09")).status_code == 200
    actions = [(e["action"], e["target"]) for e in trail(client)]
    assert ("token.rotated", "marc") in actions and ("config.reload", None) in actions


def test_whoami_names_the_person_behind_a_token(made) -> None:
    app, _ = made
    client = app.test_client()
    me = client.get("/api/whoami", headers=bearer(PEOPLE["hana"][2])).get_json()
    assert me == {"id": "hana", "name": "Hana", "role": "hygiene", "groups": ["ward-b"], "shared": False}
    shared = client.get("/api/whoami", headers=bearer(ADMIN)).get_json()
    assert (shared["name"], shared["shared"]) == ("shared admin token", True)


@pytest.mark.parametrize(("table", "named"), [
    ('id = "x"\nrole = "boss"\ntoken_sha256 = "' + "a" * 64 + '"', "role must be one of"),
    ('id = "x"\nrole = "admin"\ntoken_sha256 = "abc"', "token_sha256 must be 64 hexadecimal"),
    ('id = "x"\nrole = "admin"\ntoken_sha256 = "' + "a" * 64 + '"\ngroups = ["nowhere"]', "unknown group(s)"),
    ('id = "x"\nrole = "admin"\ntoken_sha256 = "' + hashlib.sha256(TOKENS["b12"].encode()).hexdigest() + '"',
     "their own token"),
])
def test_bad_staff_declarations_are_refused_naming_the_key(tmp_path, table: str, named: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(ward_config_text() + "\n[[server.staff]]\n" + table + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_staff_token_prints_a_token_once_and_the_line_to_paste(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(ward_config_text(), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "app", "--config", str(path), "staff-token", "cardio-1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    token = done.stdout.split("it is not stored anywhere): ")[1].split()[0]
    assert f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"' in done.stdout
    assert 'id = "cardio-1"' in done.stdout

"""Who may call each route: docs/architecture.md's table is what the routes enforce, for every role."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.config import load_config
from devkit.servers import ROOT
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_config_text

DOC = ROOT / "docs" / "architecture.md"
MAINTENANCE = "maintenance-token-route-0000"
# People: (id, role, groups, their token).
PEOPLE = [("ada", "admin", [], "person-token-admin-00001"), ("hugo", "hygiene", [], "person-token-hygiene-0002"),
          ("maud", "maintenance", [], "person-token-maint-00003"),
          ("hana", "hygiene", ["ward-b"], "person-token-hyg-wardb-04"),
          ("marc", "maintenance", ["ward-b"], "person-token-mnt-wardb-05")]
CALLERS = {"none": None, "unknown token": "not-a-token-anyone-holds", "shared admin token": ADMIN,
           "shared maintenance token": MAINTENANCE, "dispenser:self": TOKENS["entree"],
           "another dispenser": TOKENS["b12"], **{f"{role} {ident}": token for ident, role, _, token in PEOPLE}}
LIMITED = {"hygiene hana", "maintenance marc"}  # ward-b only: every route here is about entree or ward-a
# Each write route with a request its admitted callers would send (the dispenser in the URL is "entree").
REQUESTS = {
    ("/mettre_a_jour_donnees", "POST"): {"json": {"gel_used": 1.5, "hands_detected": 1}},
    ("/api/dispensers/<id>/heartbeat", "POST"): {"json": {"backlog": 0}},
    ("/api/dispensers/<id>/refill", "POST"): {},
    ("/api/dispensers/<id>/mode", "POST"): {"json": {"mode": "live"}},
    ("/api/groups/<id>/census/<day>", "PUT"): {"json": {"patients": 12}},
    ("/api/groups/<id>/census.csv", "POST"): {"data": "date,patients\n2026-03-02,12\n",
                                              "content_type": "text/csv"},
    ("/api/notifications", "GET"): {},
    ("/api/audit", "GET"): {},
    ("/api/audit.csv", "GET"): {},
    ("/api/whoami", "GET"): {},
}
URLS = {"/api/dispensers/<id>/": "/api/dispensers/entree/",
        "/api/groups/<id>/census/<day>": "/api/groups/ward-a/census/2026-03-02",
        "/api/groups/<id>/": "/api/groups/ward-a/"}


def documented() -> dict[tuple[str, str], frozenset[str]]:
    """The table between the route-permissions markers: (route, method) -> the roles it admits."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- route-permissions: start -->")[1].split("<!-- route-permissions: end -->")[0]
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| ([^|]+) \|$", table, re.M)
    return {(route, method): frozenset(r.strip() for r in roles.split(",")) for route, method, roles in rows}


def url_of(route: str) -> str:
    """The concrete URL the test sends for a documented route."""
    for pattern, concrete in URLS.items():
        route = route.replace(pattern, concrete)
    return route


def staff_text() -> str:
    """The [[server.staff]] tables of PEOPLE."""
    return "".join(f'\n[[server.staff]]\nid = "{ident}"\nname = "{ident.title()}"\nrole = "{role}"\n'
                   f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\ngroups = {json.dumps(groups)}\n'
                   for ident, role, groups, token in PEOPLE)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "config.toml"
    path.write_text(ward_config_text(database=f"sqlite:///{tmp_path / 'u.db'}", maintenance_token=MAINTENANCE)
                    + staff_text(), encoding="utf-8")
    app = create_app(load_config(path))
    yield app
    app.extensions["usage_store"].engine.dispose()


def expected(who: str, admitted: frozenset[str], about_a_place: bool = True) -> int:
    """The status a caller gets from a route admitting these roles (its request otherwise valid)."""
    if who in ("none", "unknown token"):
        return 401
    if who in ("dispenser:self", "another dispenser"):
        return 200 if "dispenser" in admitted or (who == "dispenser:self" and "dispenser:self" in admitted) else 403
    if who == "shared admin token":
        return 200 if "admin" in admitted else 403
    if who == "shared maintenance token":
        return 200 if admitted & {"maintenance", "maintenance-token"} else 403
    role = who.split()[0]
    return 200 if role in admitted and (who not in LIMITED or not about_a_place) else 403


def test_every_route_that_changes_something_is_in_the_table_with_the_roles_it_enforces(app: Flask) -> None:
    table = documented()
    enforced = {}
    for rule in app.url_map.iter_rules():
        roles = getattr(app.view_functions[rule.endpoint], "roles", None)
        route = re.sub(r"<dispenser:dispenser_id>|<group_id>", "<id>", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert roles or method == "GET", f"{method} {rule.rule} changes something but has no @requires"
            if roles:
                enforced[(route, method)] = roles
        if roles is None:
            assert rule.methods <= {"GET", "HEAD", "OPTIONS"}
    assert enforced == table
    assert set(REQUESTS) == set(table)


@pytest.mark.parametrize("who", list(CALLERS))
@pytest.mark.parametrize(("route", "method"), list(REQUESTS))
def test_each_role_gets_what_the_table_says(app: Flask, route: str, method: str, who: str) -> None:
    admitted = documented()[(route, method)]
    token = CALLERS[who]
    headers = bearer(token) if token else {}
    resp = app.test_client().open(url_of(route), method=method, headers=headers, **REQUESTS[(route, method)])
    status = expected(who, admitted, "<id>" in route)
    assert resp.status_code == status, resp.get_data(as_text=True)
    if status == 401:
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    if resp.mimetype != "text/csv":
        assert resp.is_json and (resp.status_code < 400) == ("error" not in resp.get_json())

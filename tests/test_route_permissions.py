"""Who may call each route: docs/architecture.md's table is what the routes enforce, for every role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.wards import ward_app

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
MAINTENANCE = "maintenance-token-route-0000"
CALLERS = {"none": None, "unknown token": "not-a-token-anyone-holds", "admin": ADMIN, "maintenance": MAINTENANCE,
           "dispenser:self": TOKENS["entree"], "another dispenser": TOKENS["b12"]}
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


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    with ward_app(tmp_path, maintenance_token=MAINTENANCE) as app:
        yield app


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
    if token is None or who == "unknown token":
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    elif who in admitted or (who in ("dispenser:self", "another dispenser") and "dispenser" in admitted):
        assert resp.status_code in (200, 201), resp.get_data(as_text=True)
    else:
        assert resp.status_code == 403, resp.get_data(as_text=True)
    assert resp.is_json and (resp.status_code < 400) == ("error" not in resp.get_json())

"""Property-based fuzzing of the POST body, headers and query strings: never a 5xx, totals move only when accepted."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.helpers.config import ADMIN, TOKENS

pytestmark = pytest.mark.slow  # hundreds of generated examples per test

URL = "/mettre_a_jour_donnees"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4),
    max_leaves=12,
)
good_numbers = st.integers(min_value=0, max_value=1000) | st.floats(min_value=0, max_value=1000)
numbers = st.one_of(
    good_numbers, good_numbers, good_numbers, st.integers(min_value=-5, max_value=1200),
    st.floats(allow_nan=False), st.booleans(), st.text(max_size=4), st.none(),
)
good_times = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2026, 1, 1), timezones=st.just(UTC))
timestamps = st.one_of(
    good_times.map(lambda d: d.isoformat()), good_times.map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 1, 1)).map(lambda d: d.isoformat()),
    st.text(max_size=30), st.integers(),
)
short_ids = st.text(alphabet="abc", min_size=1, max_size=3)
good_event = st.fixed_dictionaries({"gel_used": good_numbers}, optional={
    "hands_detected": st.integers(min_value=0, max_value=1000), "event_id": short_ids,
    "timestamp": good_times.map(lambda d: d.isoformat())})
# Plausible events, so that many examples are accepted; short event_ids so that duplicates happen.
events = st.one_of(good_event, good_event, st.fixed_dictionaries({}, optional={
    "gel_used": numbers, "hands_detected": numbers,
    "event_id": st.one_of(short_ids, st.text(max_size=70), st.integers(), st.just("")),
    "timestamp": timestamps, "extra": json_values,
}))
bodies = st.one_of(good_event, st.lists(good_event, min_size=1, max_size=6), events,
                   st.lists(events, min_size=0, max_size=6), json_values)
valid_auth = st.sampled_from([f"Bearer {TOKENS['entree']}", f"bearer {TOKENS['cafeteria']}",
                              f"Bearer  {TOKENS['b12']} "])
tokens = st.one_of(
    valid_auth, valid_auth, valid_auth,
    st.sampled_from([f"Basic {TOKENS['entree']}", "Bearer", "Bearer ", f"Bearer {ADMIN}", TOKENS["entree"], "",
                     f"Bearer {TOKENS['entree']}x", f"Bearer {TOKENS['entree'][:-1]}"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
)
content_types = st.sampled_from(["application/json", "application/json", "application/json", "text/plain",
                                 "application/json; charset=utf-8", "application/x-www-form-urlencoded",
                                 "application/vnd.api+json", ""])
query_values = st.one_of(
    st.sampled_from(["minute", "hour", "day", "week", "entree", "b12", "nope", "", "2026-01-01",
                     "2026-01-01T00:00:00+02:00", "0001-01-01", "9999-12-31T23:59:59", "1970-01-01T00:00:00Z"]),
    st.text(max_size=30),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat()),
)
queries = st.dictionaries(st.sampled_from(["bucket", "from", "to", "dispenser", "x", ""]), query_values, max_size=4)


def _state(client) -> tuple[int, int]:
    """(gel microlitres, hands) as the GET route reports them."""
    data = client.get("/obtenir_donnees_utilisation").get_json()
    return round(data["gel_used"] * 1000), data["hands_detected"]


def _dispenser_of(auth: str) -> str | None:
    scheme, _, tok = auth.partition(" ")
    tok = tok.strip()
    if scheme.lower() != "bearer":
        return None
    return next((d for d, t in TOKENS.items() if t == tok), None)


def _expected_delta(body: object, dispenser: str, seen: set) -> tuple[int, int]:
    """What an accepted body must add, counting each (dispenser, event_id) once, first occurrence wins."""
    items = body if isinstance(body, list) else [body]
    gel = hands = 0
    for item in items:
        eid = item.get("event_id")
        if eid is not None:
            if (dispenser, eid) in seen:
                continue
            seen.add((dispenser, eid))
        gel += round(item.get("gel_used", 0) * 1000)
        hands += item.get("hands_detected", 0)
    return gel, hands


@FUZZ
@given(body=bodies, auth=tokens, ctype=content_types)
def test_fuzz_post_json(client, body, auth, ctype) -> None:
    """Any JSON body, token and Content-Type: no 5xx; totals unchanged when refused, moved by the sums when not."""
    seen = client.application.extensions.setdefault("fuzz_seen", set())
    before = _state(client)
    headers = {"Authorization": auth} if auth else {}
    if ctype:
        headers["Content-Type"] = ctype
    resp = client.post(URL, data=json.dumps(body), headers=headers)
    assert resp.status_code < 500, resp.data
    event(f"status {resp.status_code}")
    after = _state(client)
    if resp.status_code != 200:
        assert after == before, (resp.status_code, resp.data)
        return
    dispenser = _dispenser_of(auth)
    assert dispenser is not None, "accepted without a valid token"
    gel, hands = _expected_delta(body, dispenser, seen)
    assert after == (before[0] + gel, before[1] + hands), resp.get_json()


@FUZZ
@given(item=good_event, with_id=st.booleans(), as_list=st.booleans(), auth=valid_auth,
       ctype=st.sampled_from(["application/json", "application/json; charset=utf-8"]))
def test_fuzz_a_valid_event_is_accepted_and_counted_once(client, item, with_id, as_list, auth, ctype) -> None:
    """A valid event with a valid token: always 200 and counted once; sent again with its event_id, counted never."""
    item = {k: v for k, v in item.items() if k != "event_id"}
    if with_id:
        item["event_id"] = uuid.uuid4().hex  # a new event: the first sending must count
    body = [item] if as_list else item
    before = _state(client)
    resp = client.post(URL, data=json.dumps(body), headers={"Authorization": auth, "Content-Type": ctype})
    assert resp.status_code == 200, (body, resp.data)
    assert (resp.get_json()["accepted"], resp.get_json()["duplicates"]) == (1, 0), resp.get_json()
    gel, hands = _expected_delta(body, _dispenser_of(auth), set())
    assert _state(client) == (before[0] + gel, before[1] + hands)
    if with_id:
        again = client.post(URL, data=json.dumps(body), headers={"Authorization": auth, "Content-Type": ctype})
        assert again.status_code == 200 and again.get_json()["duplicates"] == 1, again.data
        assert _state(client) == (before[0] + gel, before[1] + hands)


@FUZZ
@given(raw=st.binary(max_size=300), auth=tokens, ctype=content_types)
def test_fuzz_post_bytes(client, raw, auth, ctype) -> None:
    """Arbitrary bytes: no 5xx, and a refused request changes nothing."""
    before = _state(client)
    headers = {"Authorization": auth} if auth else {}
    if ctype:
        headers["Content-Type"] = ctype
    resp = client.post(URL, data=raw, headers=headers)
    assert resp.status_code < 500, resp.data
    if resp.status_code != 200:
        assert _state(client) == before


@FUZZ
@given(path=st.sampled_from(["/obtenir_donnees_utilisation", "/api/history", "/api/export.csv"]), query=queries,
       inm=st.one_of(st.none(), st.just("*"),
                     st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30)))
def test_fuzz_read_routes(client, post, path, query, inm) -> None:
    """Any query string (and If-None-Match) on the read routes: no 5xx, and reading never changes the totals."""
    if not client.application.extensions.get("fuzz_filled"):
        assert post([{"gel_used": 1.5, "hands_detected": 1, "event_id": f"f{i}"} for i in range(5)]).status_code == 200
        client.application.extensions["fuzz_filled"] = True
    before = _state(client)
    headers = {"If-None-Match": inm} if inm is not None else {}
    resp = client.get(path, query_string=query, headers=headers)
    assert resp.status_code < 500, (query, resp.data[:300])
    resp.get_data()  # a streamed CSV must not fail half-way either
    assert _state(client) == before

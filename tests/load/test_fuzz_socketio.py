"""Every Socket.IO handler fuzzed with what a hostile client can send: never an exception, never a log line, and
`join` either answers an error and changes nothing, or joins a declared group."""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import socketio

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
# Payloads shaped like a join, with their keys and types wrong in every way, beside anything at all.
joins = st.fixed_dictionaries({}, optional={"group": values, "since": values, "extra": values}) | values


def rooms_of(client) -> set[str]:
    """The rooms the server holds this test client in (its own sid's room aside)."""
    sid = socketio.server.manager.sid_from_eio_sid(client.eio_sid, "/")
    return set(socketio.server.manager.get_rooms(sid, "/")) - {sid}


@FUZZ
@given(payload=joins)
def test_join_answers_an_error_or_joins_a_known_group_and_logs_nothing(app, sio_client, caplog, payload) -> None:
    caplog.clear()
    before = rooms_of(sio_client)
    assert before  # "full" at first, then the room of the last join that was taken
    with caplog.at_level(logging.DEBUG, logger="app"):
        answer = sio_client.emit("join", payload, callback=True)
    assert isinstance(answer, dict), answer
    known = app.extensions["usage_config"].fleet.groups
    group_ok = isinstance(payload, dict) and "group" in payload and set(payload) <= {"group", "since"} \
        and (payload["group"] is None or (isinstance(payload["group"], str) and payload["group"] in known))
    since = payload.get("since") if isinstance(payload, dict) else None
    since_ok = since is None or (type(since) is int and since >= 0)
    if group_ok and since_ok:
        assert answer.get("group") == payload["group"] and isinstance(answer.get("seq"), int), answer
    else:
        assert set(answer) == {"error"} and isinstance(answer["error"], str), answer
        assert rooms_of(sio_client) == before  # refused: the client listens where it did
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert sio_client.is_connected()


@FUZZ
@given(event=st.text(min_size=1, max_size=20).filter(lambda e: e not in ("join", "connect", "disconnect")),
       payload=values)
def test_events_with_no_handler_are_ignored_quietly(app, sio_client, caplog, event, payload) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="app"):
        sio_client.emit(event, payload)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert sio_client.is_connected()

"""Group commit: a failing group fails every caller in it; under concurrent POSTs the last push equals the GET."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from app.config import DispenserDecl
from app.store import Event, Store
from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS

POISON_UL = 666_000  # a dose the database refuses (a trigger), standing for any failure inside the transaction
EVENT = "donnees_utilisation"


def queued(store: Store) -> tuple[int, bool]:
    """(callers waiting for the next group commit, whether a group is being committed)."""
    group = store.group_commit
    return len(group.waiting), group.commit_lock.locked()


class Caller(threading.Thread):
    """One ingest_shared() call in its own thread; keeps what it returned or raised."""

    def __init__(self, store: Store, gel_ul: int):
        super().__init__(daemon=True)
        self.store, self.gel_ul = store, gel_ul
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.store.ingest_shared("entree", [Event(gel_ul=self.gel_ul, hands=1, ts=time.time())])
        except BaseException as exc:  # the test looks at what each caller got
            self.error = exc


@pytest.fixture
def store(tmp_path: Path):
    """A store on a real SQLite file with a trigger that refuses POISON_UL doses."""
    path = tmp_path / "usage.db"
    made = Store(f"sqlite:///{path}", [DispenserDecl("entree", "Entrée", 300.0, TOKENS["entree"])])
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.gel_ul = {POISON_UL} "
                     "BEGIN SELECT RAISE(ABORT, 'poisoned dose'); END")
    yield made, path
    made.engine.dispose()


def test_every_caller_of_a_failing_group_gets_the_exception(store):
    store, path = store
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database: the first group waits for it
    first = Caller(store, 1000)
    first.start()
    wait_for(lambda: queued(store) == (0, True), 10, message="the first group taken and waiting for the database")
    # These arrive while the first group commits: they all wait, and will share the next group, with one bad dose.
    group = [Caller(store, gel) for gel in (2000, POISON_UL, 3000, 4000)]
    for caller in group:
        caller.start()
    wait_for(lambda: queued(store) == (len(group), True), 10, message="the second group queued")
    blocker.execute("ROLLBACK")
    blocker.close()
    for caller in (first, *group):
        caller.join(30)
        assert not caller.is_alive()

    assert first.error is None and first.result.accepted == 1
    assert all(c.result is None for c in group)
    errors = [c.error for c in group]
    assert all(e is not None and "poisoned dose" in str(e) for e in errors), errors
    # Nothing of the failed group was kept, not even the good doses that shared its transaction, and the store
    # goes on: the next caller commits alone, on top of the first group only.
    after = Caller(store, 5000)
    after.start()
    after.join(30)
    assert after.error is None
    assert (after.result.gel_used, after.result.hands_detected) == (6.0, 2)
    assert after.result.commit == first.result.commit + 1


def test_a_caller_alone_gets_its_own_exception_and_others_are_unaffected(store):
    store, _ = store
    bad = Caller(store, POISON_UL)
    bad.start()
    bad.join(30)
    good = Caller(store, 1000)
    good.start()
    good.join(30)
    assert bad.error is not None and "poisoned dose" in str(bad.error)
    assert good.error is None and (good.result.gel_used, good.result.hands_detected) == (1.0, 1)


@pytest.fixture(params=[
    pytest.param(("sqlite", "eventlet"), marks=pytest.mark.slow, id="sqlite-eventlet"),
    # pg8000's sockets are green: POSTs commit while a push is being built, so later rounds are needed.
    pytest.param(("postgresql", "eventlet"), marks=[pytest.mark.slow, pytest.mark.services], id="postgresql-eventlet"),
    pytest.param(("sqlite", "threading"), marks=pytest.mark.slow, id="sqlite-threading"),
])
def busy_server(request, server_factory):
    """A real server process on each database and async mode where pushes and commits interleave differently."""
    database, mode = request.param
    url = request.getfixturevalue("pg_url") if database == "postgresql" else "sqlite:///usage.db"
    # The alert check would push the figures by itself (three dispensers come online): keep it out of the way.
    return server_factory(database=url, async_mode=mode, check_interval_s=3600)


def test_after_many_concurrent_acknowledged_posts_the_last_push_equals_the_get(busy_server):
    server = busy_server
    pushes: list[dict] = []
    client = socketio.Client(reconnection=False)
    client.on(EVENT, pushes.append)
    client.connect(server.url, transports=["websocket"], wait_timeout=10)
    try:
        wait_for(lambda: pushes, 10, message="the figures on connect")
        dispensers = list(TOKENS)

        def post(i: int) -> dict:
            resp = requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 0.5, "hands_detected": 1},
                                 headers=bearer(TOKENS[dispensers[i % 3]]), timeout=30)
            assert resp.status_code == 200, resp.text
            return resp.json()

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(post, range(240)))
        assert max(a["hands_detected"] for a in answers) == 240  # every POST acknowledged, and counted

        def settled() -> bool:
            get = requests.get(server.url + "/obtenir_donnees_utilisation", timeout=10).json()
            return bool(pushes) and pushes[-1] == get and get["hands_detected"] == 240

        wait_for(settled, 20, interval=0.1, message="a last push equal to the GET")
        hands = [p["hands_detected"] for p in pushes]
        assert hands == sorted(hands)  # pushes are sent in commit order, never an older one after a newer
        assert len(pushes) > 1
    finally:
        client.disconnect()

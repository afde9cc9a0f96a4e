"""kill -9 of the server in the middle of a stream of acknowledged POSTs: no acknowledged event lost or doubled."""

from __future__ import annotations

import csv
import io
import threading

import pytest
import requests

from devkit.servers import ServerProcess, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS

pytestmark = pytest.mark.slow  # real processes killed and restarted

WRITERS = 4
DISPENSERS = list(TOKENS)


def _writer(url: str, n: int, stop: threading.Event, sent: list, acked: list) -> None:
    """POST single events with unique ids until stopped or the server goes away."""
    dispenser = DISPENSERS[n % len(DISPENSERS)]
    with requests.Session() as s:
        s.headers.update(bearer(TOKENS[dispenser]))
        i = 0
        while not stop.is_set():
            eid = f"w{n}-{i}"
            i += 1
            sent.append((dispenser, eid))
            try:
                r = s.post(url + "/mettre_a_jour_donnees", timeout=5,
                           json={"gel_used": 1.5, "hands_detected": 1, "event_id": eid})
            except requests.RequestException:
                return  # the server was killed: this one is unacknowledged
            if r.status_code == 200:
                acked.append((dispenser, eid))
            else:
                return


def _stored(url: str) -> dict[tuple[str, str], int]:
    """How many times each (dispenser, event_id) is stored, from the CSV export."""
    r = requests.get(url + "/api/export.csv", timeout=30)
    assert r.status_code == 200, r.text
    counts: dict[tuple[str, str], int] = {}
    for row in csv.DictReader(io.StringIO(r.text)):
        key = (row["dispenser"], row["event_id"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def _hands(url: str) -> int:
    return requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()["hands_detected"]


def test_kill_9_mid_stream_loses_and_doubles_nothing(server_factory) -> None:
    """Every acknowledged event survives kill -9 exactly once; re-sending everything then stores all exactly once."""
    server = server_factory(async_mode="eventlet")
    sent: list[tuple[str, str]] = []
    acked: list[tuple[str, str]] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(server.url, n, stop, sent, acked), daemon=True)
               for n in range(WRITERS)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 150, 60, message="150 acknowledged POSTs")
    server.kill()  # mid-stream: every writer has a request in flight or about to be
    stop.set()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    acked_set = set(acked)
    assert len(acked_set) == len(acked), "an event_id was acknowledged twice"

    restarted = ServerProcess(server.config_path).start()
    try:
        stored = _stored(restarted.url)
        missing = [k for k in acked_set if stored.get(k, 0) != 1]
        assert not missing, f"acknowledged but not stored exactly once: {missing[:5]}"
        assert all(n == 1 for n in stored.values()), "an event is stored twice"
        assert set(stored) <= set(sent), "stored an event nobody sent"
        assert _hands(restarted.url) == len(stored) >= len(acked_set)

        # A dispenser that never got its answers re-sends everything: each event must count exactly once.
        for dispenser in DISPENSERS:
            mine = [eid for d, eid in sent if d == dispenser]
            for i in range(0, len(mine), 1000):
                r = requests.post(restarted.url + "/mettre_a_jour_donnees", timeout=30,
                                  headers=bearer(TOKENS[dispenser]),
                                  json=[{"gel_used": 1.5, "hands_detected": 1, "event_id": e}
                                        for e in mine[i:i + 1000]])
                assert r.status_code == 200, r.text
        stored = _stored(restarted.url)
        assert set(stored) == set(sent) and all(n == 1 for n in stored.values())
        data = requests.get(restarted.url + "/obtenir_donnees_utilisation", timeout=10).json()
        assert data["hands_detected"] == len(set(sent))
        assert round(data["gel_used"] * 1000) == 1500 * len(set(sent))
    finally:
        restarted.stop()

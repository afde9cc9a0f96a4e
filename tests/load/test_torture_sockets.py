"""200 Socket.IO clients connecting and disconnecting in rounds while events stream: no error, bounded memory."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

import pytest
import requests
import socketio

from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS

pytestmark = pytest.mark.slow  # rounds of hundreds of real clients

CLIENTS = 200
ROUNDS = 4
EVENT = "donnees_utilisation"


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def _connected(url: str) -> float:
    text = requests.get(url + "/metrics", headers=bearer(ADMIN), timeout=10).text
    found = re.search(r"^gel_dashboards_connected(?:\{[^}]*\})? ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


def _stream(url: str, stop: threading.Event, errors: list, count: list) -> None:
    """POST events one after another until stopped."""
    with requests.Session() as s:
        s.headers.update(bearer(TOKENS['entree']))
        i = 0
        while not stop.is_set():
            try:
                r = s.post(url + "/mettre_a_jour_donnees", timeout=10,
                           json={"gel_used": 1.5, "hands_detected": 1, "event_id": f"s{i}"})
                if r.status_code != 200:
                    errors.append(f"POST {r.status_code}: {r.text[:200]}")
            except requests.RequestException as exc:
                errors.append(f"POST failed: {exc!r}")
            i += 1
            count[0] = i


async def _one_round(url: str) -> list[str]:
    """Connect CLIENTS clients (50 at a time), check each got the payload on connect, disconnect them all."""
    problems: list[str] = []
    clients = []

    async def connect() -> None:
        sio = socketio.AsyncClient(reconnection=False)
        got = asyncio.Event()

        @sio.on(EVENT)
        async def on_payload(data) -> None:
            if "hands_detected" not in data:
                problems.append(f"bad payload {str(data)[:100]}")
            got.set()

        try:
            await sio.connect(url, transports=["websocket"], wait_timeout=20)
            await asyncio.wait_for(got.wait(), 20)
        except Exception as exc:  # every failure is reported, none is fatal to the others
            problems.append(f"client: {exc!r}")
        clients.append(sio)

    for i in range(0, CLIENTS, 50):
        await asyncio.gather(*(connect() for _ in range(min(50, CLIENTS - i))))
    await asyncio.gather(*(c.disconnect() for c in clients))
    return problems


def test_clients_churn_while_events_stream(server) -> None:
    """Rounds of 200 connects/disconnects under a stream of POSTs: every client served, RSS growth bounded."""
    stop, errors, count = threading.Event(), [], [0]
    streamer = threading.Thread(target=_stream, args=(server.url, stop, errors, count), daemon=True)
    streamer.start()
    rss = []
    try:
        for _ in range(ROUNDS):
            problems = asyncio.run(_one_round(server.url))
            assert not problems, problems[:5]
            wait_for(lambda: _connected(server.url) == 0, 30, message="server to see every client gone")
            rss.append(_rss_mb(server.proc.pid))
    finally:
        stop.set()
        streamer.join(15)
    assert not errors, errors[:5]
    assert count[0] > 0
    # A leak of what each client leaves behind grows with every round; heap fragmentation and caches warming up
    # do not. Allow the last two rounds (400 clients) half the size of the warmed-up process: generous for any
    # allocator, while a per-client leak of 100 KB or more would still show.
    assert rss[-1] - rss[1] < max(50.0, rss[1] / 2), f"RSS per round (MB): {rss}"
    assert "Traceback" not in server.log(), server.log()[-2000:]
    final = requests.get(server.url + "/obtenir_donnees_utilisation", timeout=10).json()
    assert final["hands_detected"] == count[0]

"""`make demo` at scale: N simulated dispensers in one process, posting to the server like real ones.

Standard library only. Each dispenser gets a day's worth of earlier uses at start (so levels differ), then people
come in at random (busier wards more often), each an entry, HAND_SHARE of them a dose too; a few dispensers fall
silent so that the offline alert shows.
"""

from __future__ import annotations

import http.client
import json
import random
import secrets
import threading
import time
import tomllib
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from fleet_layout import write_fleet

HEARTBEAT_S = 60.0  # a dispenser with nothing to send says it is alive this often
SILENT_SHARE = 0.03  # dispensers that stop talking after their history (offline after the server's delay)
WORKERS = 4
HAND_SHARE = 0.7  # people coming in through a ward's door who use its dispenser; the others are entries alone


class FleetSimulator:
    """Uses and heartbeats for many dispensers from a few threads, until `stop` is set."""

    def __init__(self, url: str, tokens: dict[str, str], mean_interval: float, stop: threading.Event,
                 seed: int | None = None):
        self.url, self.tokens, self.stop = urlsplit(url), tokens, stop
        self.rng = random.Random(seed)
        ids = list(tokens)
        self.silent = set(self.rng.sample(ids, int(len(ids) * SILENT_SHARE)))
        self.active = [d for d in ids if d not in self.silent]
        # Some dispensers are much busier than others (an entrance versus a storeroom).
        self.weights = [self.rng.choice((0.3, 1, 1, 1, 2, 4)) for _ in self.active]
        self.rate = len(self.active) / mean_interval  # people coming in per second, for the whole fleet
        self.last_contact: dict[str, float] = {}
        self.sent = 0
        self.failed = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        """Send every dispenser's history, then uses and heartbeats until stopped (blocks)."""
        self.history()
        self.live()

    def live(self) -> None:
        """Uses and heartbeats until stopped (blocks)."""
        threads = [threading.Thread(target=self._uses, args=(i,), daemon=True) for i in range(WORKERS)]
        threads.append(threading.Thread(target=self._heartbeats, daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=10)

    def _post(self, conn: http.client.HTTPConnection, path: str, dispenser: str, body: object) -> bool:
        headers = {"Authorization": f"Bearer {self.tokens[dispenser]}", "Content-Type": "application/json"}
        try:
            conn.request("POST", path, json.dumps(body), headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except OSError:
            conn.close()  # reconnects on the next request
            ok = False
        with self.lock:
            self.sent += ok
            self.failed += not ok
            if ok:
                self.last_contact[dispenser] = time.monotonic()
        return ok

    def history(self) -> None:
        """Up to a day of earlier uses per dispenser, in one batch each (a heartbeat for one without any): every
        dispenser has been heard from once it returns, so none shows offline for want of a first contact."""
        conn = self._connection()
        for dispenser in self.tokens:
            if self.stop.is_set():
                return
            count = self.rng.randint(0, 170)
            if count:
                batch = [person(self.rng, round(self.rng.uniform(60, 86000), 1)) for _ in range(count)]
                self._post(conn, "/mettre_a_jour_donnees", dispenser, batch)
            else:
                self._post(conn, f"/api/dispensers/{dispenser}/heartbeat", dispenser, {"backlog": 0})
        conn.close()

    def _uses(self, worker: int) -> None:
        """One worker's share of the people: exponential gaps, a weighted choice of dispenser."""
        rng, conn = random.Random(self.rng.random() + worker), self._connection()
        while not self.stop.wait(rng.expovariate(self.rate / WORKERS)):
            dispenser = rng.choices(self.active, self.weights)[0]
            self._post(conn, "/mettre_a_jour_donnees", dispenser, person(rng))
        conn.close()

    def _heartbeats(self) -> None:
        """Every few seconds, a heartbeat for each active dispenser quiet for HEARTBEAT_S."""
        conn = self._connection()
        while not self.stop.wait(5.0):
            now = time.monotonic()
            with self.lock:
                quiet = [d for d in self.active if now - self.last_contact.get(d, 0) >= HEARTBEAT_S]
            for dispenser in quiet:
                if self.stop.is_set():
                    break
                self._post(conn, f"/api/dispensers/{dispenser}/heartbeat", dispenser, {"backlog": 0})
        conn.close()


def person(rng: random.Random, age_s: float | None = None) -> dict:
    """Someone coming in through a ward's door (an entry), a dose too for the share who use the dispenser."""
    event: dict = {"entries": 1, "event_id": uuid.uuid4().hex}
    if rng.random() < HAND_SHARE:
        event.update(gel_used=1.5, hands_detected=1)
    if age_s is not None:
        event["age_s"] = age_s
    return event


def fleet_config(base: Path, n: int) -> tuple[Path, dict[str, str]]:
    """A config for `n` dispensers in groups, next to `base` (whose [server] port it keeps); id -> token too."""
    with base.open("rb") as fh:
        port = tomllib.load(fh).get("server", {}).get("port", 5000)
    server = {"port": port, "database": "sqlite:///usage.db", "admin_token": secrets.token_urlsafe(18),
              "maintenance_token": secrets.token_urlsafe(18)}
    return write_fleet(base.parent / "instance" / f"fleet-{n}", n, server,
                       token_of=lambda _: secrets.token_urlsafe(18))

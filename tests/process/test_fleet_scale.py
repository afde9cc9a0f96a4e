"""A use costs the same with 10,000 dispensers declared as with 10: a POST's cost does not grow with the fleet."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
import requests

from devkit.servers import ServerProcess
from tools.fleet_layout import write_fleet

pytestmark = pytest.mark.slow
POSTS = 200


def posts_per_second(url: str, tokens: list[str]) -> float:
    """Sequential single-event POSTs from one client, over 10 of the fleet's dispensers."""
    with requests.Session() as session:
        for token in tokens:  # each seen once: the rate below is of uses, not of first contacts
            session.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10).raise_for_status()
        start = time.perf_counter()
        for k in range(POSTS):
            answer = session.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                                  headers={"Authorization": f"Bearer {tokens[k % len(tokens)]}"}, timeout=10)
            assert answer.status_code == 200, answer.text
        return POSTS / (time.perf_counter() - start)


def test_a_post_costs_the_same_with_10000_dispensers_as_with_10(tmp_path: Path) -> None:
    servers, rates = {}, {10: [], 10_000: []}
    try:
        for n in rates:
            # The periodic alert check is the bench's to measure (its cost per check grows with the fleet): here
            # only what a POST costs, so it is kept out of the rounds.
            config, tokens = write_fleet(tmp_path / f"fleet-{n}", n, {"database": "sqlite:///usage.db",
                                                                      "async_mode": "eventlet",
                                                                      "check_interval_s": 3600})
            servers[n] = (ServerProcess(config).start(60), list(tokens.values())[:10])
        for k in range(4):  # interleaved, each first in turn, so that the machine's load falls on both alike
            for n, (server, tokens) in list(servers.items())[::-1 if k % 2 else 1]:
                rates[n].append(posts_per_second(server.url, tokens))
    finally:
        for server, _ in servers.values():
            server.stop()
    # The bench holds the exact goal (>= 0.9x); here, lenient enough for a loaded CI machine: medians, since one
    # round of either size can be twice the others (470 against 122-240 POSTs/s seen under gevent on CI).
    assert statistics.median(rates[10_000]) >= 0.6 * statistics.median(rates[10]), rates

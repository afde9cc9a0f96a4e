"""A use costs the same with 10,000 dispensers declared as with 10: a POST's cost does not grow with the fleet.

Cost is the server's CPU time per POST: on a CI machine running four test workers on two cores, the rate of POSTs
a second swings threefold from one round to the next (fsyncs and run queues shared), its CPU time far less.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest
import requests

from devkit.servers import ServerProcess
from tools.fleet_layout import write_fleet

pytestmark = pytest.mark.slow
POSTS = 300  # about 0.5 s of server CPU a round: 50 clock ticks, a tick is 2 %


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ms_per_post(url: str, pid: int, tokens: list[str]) -> float:
    """The server's CPU time per POST, in ms: sequential single-event POSTs over 10 of the fleet's dispensers."""
    with requests.Session() as session:
        for token in tokens:  # each seen once: what follows costs uses, not first contacts
            session.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10).raise_for_status()
        start = cpu_seconds(pid)
        for k in range(POSTS):
            answer = session.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                                  headers={"Authorization": f"Bearer {tokens[k % len(tokens)]}"}, timeout=10)
            assert answer.status_code == 200, answer.text
        return 1000 * (cpu_seconds(pid) - start) / POSTS


def test_a_post_costs_the_same_with_10000_dispensers_as_with_10(tmp_path: Path) -> None:
    servers, costs = {}, {10: [], 10_000: []}
    try:
        for n in costs:
            # The periodic alert check is the bench's to measure (its cost per check grows with the fleet): here
            # only what a POST costs, so it is kept out of the rounds.
            config, tokens = write_fleet(tmp_path / f"fleet-{n}", n, {"database": "sqlite:///usage.db",
                                                                      "async_mode": "eventlet",
                                                                      "check_interval_s": 3600})
            servers[n] = (ServerProcess(config).start(60), list(tokens.values())[:10])
        for k in range(4):  # interleaved, each first in turn, so that the machine's load falls on both alike
            for n, (server, tokens) in list(servers.items())[::-1 if k % 2 else 1]:
                costs[n].append(cpu_ms_per_post(server.url, server.proc.pid, tokens))
    finally:
        for server, _ in servers.values():
            server.stop()
    # The bench holds the exact goal in POSTs a second (>= 0.9x); here the lenient 0.6x, as CPU time per
    # POST (at most 1/0.6 of the 10-dispenser cost), medians of four rounds.
    assert statistics.median(costs[10_000]) <= statistics.median(costs[10]) / 0.6, costs

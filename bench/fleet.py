"""The `fleet` step: 10,000 dispensers in groups beside the same run with 10: a use costs the same.

Both servers run side by side (tools/fleet_layout.py's hospital: site, buildings, floors, wards of 20), each
started as a fresh `python -m app` (its start is a figure) and given one use per dispenser (none is "never seen").
Then single-event POSTs/s with nobody listening (wrk with 8 connections, and one client posting in turn), the
same with 20 raw Socket.IO dashboards joined to the whole fleet as the page joins, the pages in Chromium
(bench/fleetpage.py: the desktop dashboard, the kiosk, one ward's refill round) and the RSS after all that load.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import cluster, fleetpage
from bench.common import median, now_iso, pid_of, rss_mb, use_each, wrk
from bench.context import ADMIN, RUN, token
from devkit.servers import ServerProcess
from tools.fleet_layout import write_fleet

if TYPE_CHECKING:
    from bench.context import Bench

# Smaller sizes for development: BENCH_FLEET="10,50" BENCH_FLEET_DASHBOARDS=2 BENCH_FLEET_WINDOW_S=3.
SMALL, BIG = (int(x) for x in os.environ.get("BENCH_FLEET", "10,10000").split(","))
PER_WARD = 20
DASHBOARDS = int(os.environ.get("BENCH_FLEET_DASHBOARDS", "20"))
WINDOW_S = float(os.environ.get("BENCH_FLEET_WINDOW_S", "10"))  # two of the page's 5 s polls fall in it
REPS, WRK_S = 3, 3
LOADS = 3  # cold loads of the page for the first figures; the median is kept
DESK_RATE, KIOSK_RATE = 5.0, 20.0  # uses per second while the page's bytes, then the kiosk's long tasks, are taken


def start(b: Bench, n: int) -> tuple[ServerProcess, float]:
    """A server for `n` dispensers in groups (bench tokens, reservoirs too big to empty), each used once, and the
    seconds from its process start to its first answer (a fresh interpreter, as systemd starts it)."""
    server = {"database": "sqlite:///usage.db", "async_mode": "eventlet", "admin_token": ADMIN, "log_level": "INFO"}
    config, _ = write_fleet(RUN / f"fleet-{n}", n, server, token_of=token, per_ward=PER_WARD)
    _big_reservoirs(config.with_name("dispensers.csv"))
    srv = ServerProcess(config, spawn=True)
    b.running[f"fleet-{n}"] = srv  # registered first, so that a failed start is still stopped
    t0 = time.perf_counter()
    srv.start(60)
    started_s = time.perf_counter() - t0
    use_each(srv.url, [token(i) for i in range(n)])
    return srv, started_s


def _big_reservoirs(path: Path) -> None:
    """Capacities of 1,000,000 ml as in the other stores: the load never empties one, so no alert moves."""
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    column = rows[0].index("capacity_ml")
    for row in rows[1:]:
        row[column] = "1000000"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def posts(servers: dict[str, ServerProcess], sizes: dict[str, int], tag: str, connections: int) -> dict:
    """Single-event POSTs/s over every dispenser in turn, REPS rounds interleaved (each size first in turn)."""
    runs: dict[str, list] = {k: [] for k in servers}
    for rep in range(REPS):
        for k, srv in list(servers.items())[::-1 if rep % 2 else 1]:
            runs[k].append(wrk(srv.url + "/mettre_a_jour_donnees", "post.lua", (f"{tag}{rep}{k}", "1", str(sizes[k])),
                               WRK_S, connections=connections))
    return {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in runs.items()}


def step(b: Bench) -> None:
    """Both fleets side by side: POSTs/s, the page in Chromium, then RSS, with the dashboards connected throughout."""
    started = {"small": start(b, SMALL), "big": start(b, BIG)}
    servers = {k: srv for k, (srv, _) in started.items()}
    sizes = {"small": SMALL, "big": BIG}
    fig: dict[str, Any] = {"date": now_iso(), "loadavg_at_start": os.getloadavg()[0], "dispensers": sizes,
                           "dashboards": DASHBOARDS, "window_s": WINDOW_S, "desk_uses_per_s": DESK_RATE,
                           "kiosk_uses_per_s": KIOSK_RATE, "per_ward": PER_WARD,
                           "start_s": {k: s for k, (_, s) in started.items()}}
    fig["post_headless"] = posts(servers, sizes, "h", 8)  # nobody listening: no push is built
    fig["post_sequential"] = posts(servers, sizes, "q", 1)  # one client, each POST after the last answer
    with cluster.dashboards([srv.url for srv in servers.values() for _ in range(DASHBOARDS)]):
        fig["post"] = posts(servers, sizes, "f", 8)
        b.say(f"fleet: POSTs/s {SMALL}: {fig['post']['small']['rps']:.0f}, {BIG}: {fig['post']['big']['rps']:.0f}")
        targets = {k: (srv.url, [token(i) for i in range(sizes[k])]) for k, srv in servers.items()}
        fig["page"] = fleetpage.measure(targets, LOADS, DESK_RATE, KIOSK_RATE, WINDOW_S)
        fig["rss_mb"] = {k: rss_mb(pid_of(srv)) for k, srv in servers.items()}
    b.fig["fleet"] = fig


if __name__ == "__main__":  # `python -m bench.fleet merge`, kept: now `python -m bench.report merge`
    import sys

    from bench.report.docs import merge

    if sys.argv[1:] != ["merge"]:
        sys.exit("usage: python -m bench.fleet merge")
    merge()

"""The `fleet` step: 1,000 dispensers in groups and 20 dashboards, beside the same run with 10.

Both servers run side by side (tools/fleet_layout.py's hospital: site, buildings, floors, wards of 10), each with
one use per dispenser first (none is "never seen") and 20 raw Socket.IO dashboards joined to the whole fleet as
the page joins. Then: single-event POSTs/s (wrk, rounds interleaved), the page in Chromium (bench/fleetpage.py)
and the server's RSS after all that load.
"""

from __future__ import annotations

import csv
import os
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
SMALL, BIG = (int(x) for x in os.environ.get("BENCH_FLEET", "10,1000").split(","))
DASHBOARDS = int(os.environ.get("BENCH_FLEET_DASHBOARDS", "20"))
WINDOW_S = float(os.environ.get("BENCH_FLEET_WINDOW_S", "10"))  # two of the page's 5 s polls fall in it
REPS, WRK_S = 3, 3
LOADS = 3  # cold loads of the page for the first figures; the median is kept
DESK_RATE, KIOSK_RATE = 5.0, 20.0  # uses per second while the page's bytes, then the kiosk's long tasks, are taken


def start(b: Bench, n: int) -> ServerProcess:
    """A server for `n` dispensers in groups (bench tokens, reservoirs too big to empty), each used once."""
    server = {"database": "sqlite:///usage.db", "async_mode": "eventlet", "admin_token": ADMIN, "log_level": "INFO"}
    config, _ = write_fleet(RUN / f"fleet-{n}", n, server, token_of=token)
    _big_reservoirs(config.with_name("dispensers.csv"))
    srv = ServerProcess(config)
    b.running[f"fleet-{n}"] = srv  # registered first, so that a failed start is still stopped
    srv.start(60)
    use_each(srv.url, [token(i) for i in range(n)])
    return srv


def _big_reservoirs(path: Path) -> None:
    """Capacities of 1,000,000 ml as in the other stores: the load never empties one, so no alert moves."""
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    column = rows[0].index("capacity_ml")
    for row in rows[1:]:
        row[column] = "1000000"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def step(b: Bench) -> None:
    """Both fleets side by side: POSTs/s, the page in Chromium, then RSS, with the dashboards connected throughout."""
    servers = {"small": start(b, SMALL), "big": start(b, BIG)}
    sizes = {"small": SMALL, "big": BIG}
    fig: dict[str, Any] = {"date": now_iso(), "loadavg_at_start": os.getloadavg()[0], "dispensers": sizes,
                           "dashboards": DASHBOARDS, "window_s": WINDOW_S, "desk_uses_per_s": DESK_RATE,
                           "kiosk_uses_per_s": KIOSK_RATE}
    with cluster.dashboards([srv.url for srv in servers.values() for _ in range(DASHBOARDS)]):
        runs: dict[str, list] = {k: [] for k in servers}
        for rep in range(REPS):
            order = list(servers.items())[::-1 if rep % 2 else 1]  # interleaved, each first in turn
            for k, srv in order:
                runs[k].append(wrk(srv.url + "/mettre_a_jour_donnees", "post.lua", (f"f{rep}{k}", "1", str(sizes[k])),
                                   WRK_S))
        fig["post"] = {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in runs.items()}
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

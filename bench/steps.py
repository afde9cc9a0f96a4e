"""The steps of `make bench`, each filling its figures from the servers the run shares (bench/run.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import requests

from bench import cluster, handbench, sockbench
from bench.common import median, pid_of, rss_mb, wrk
from bench.context import GET, POST, RUN, RefServer, token
from bench.idle import IdleCpu
from devkit.chromium import CHROMIUM
from devkit.servers import wait_for

if TYPE_CHECKING:
    from bench.context import Bench

REPS = 3  # interleaved repetitions of every wrk run; the median is kept
WRK_S = 3
FANOUT_CLIENTS = 1000
SEED_POLL_S = 5.0


def idle(b: Bench, idle_s: float) -> None:
    """Idle CPU over `idle_s` seconds; the window runs during the 1M prefill, so it costs no extra time."""
    procs = IdleCpu(b.server("empty").url)
    b.on_close(procs.stop)
    wait_for(procs.started, 20, message="idle procs")
    settle = time.monotonic() + 3  # the window starts 3 s after both used CPU (imports and start-up over)
    b.store("small")
    time.sleep(max(0.0, settle - time.monotonic()))
    procs.begin()
    b.store("big")
    time.sleep(max(0.0, idle_s - (time.monotonic() - procs.t0)))  # the window is idle_s long however quick the fill
    b.fig["idle_cpu"] = procs.end()


def history_ms(url: str, reps: int = 15) -> float:
    """Median wall time of GET /api/history, 30 days per day, all 100 dispensers."""
    end = time.time()
    params = {"bucket": "day", "from": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(end - 30 * 86400)),
              "to": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(end))}
    times = []
    with requests.Session() as s:
        for _ in range(reps + 1):
            t = time.perf_counter()
            r = s.get(url + "/api/history", params=params, timeout=30)
            times.append(time.perf_counter() - t)
            r.raise_for_status()
    return median(times[1:]) * 1000  # the first one warms caches


def history(b: Bench) -> None:
    """History over 1M events against the same query over 10k."""
    b.fig["history_ms"] = {"big": history_ms(b.server("big").url), "small": history_ms(b.server("small").url)}


def post(b: Bench) -> None:
    """Single-event POSTs/s, REPS interleaved rounds per server (headless), then the 1M store with a dashboard."""
    servers = {name: b.server(name) for name in ("seed", "ceiling", "empty", "big")}
    runs: dict[str, list] = {k: [] for k in servers}
    for rep in range(REPS):
        for name, srv in servers.items():
            runs[name].append(wrk(srv.url + POST, "post.lua", (f"p{rep}{name}",), WRK_S))
    b.fig["post"] = {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in runs.items()}
    # The rates above are headless (no push is built when nobody listens); the same with one wall display.
    with cluster.dashboards([servers["big"].url]):
        shown = [wrk(servers["big"].url + POST, "post.lua", (f"d{i}",), WRK_S) for i in range(REPS)]
    b.fig["post_with_dashboard"] = {"rps": median([r["rps"] for r in shown]), "runs": shown}


def batch(b: Bench) -> None:
    """Events/s in batches of 100 on the 1M store."""
    runs = [wrk(b.server("big").url + POST, "post.lua", (f"b{i}", "100"), WRK_S) for i in range(REPS)]
    b.fig["batch100"] = {"events_per_s": median([r["rps"] for r in runs]) * 100, "runs": runs}


def poll(b: Bench) -> None:
    """The project's unchanged poll (If-None-Match -> 304) against the ceiling's plain GET."""
    big, ceiling = b.server("big"), b.server("ceiling")
    polls: dict[str, list] = {"ceiling_get": [], "project_304": []}
    for _ in range(REPS):
        polls["ceiling_get"].append(wrk(ceiling.url + GET, duration=WRK_S))
        etag = requests.get(big.url + GET, timeout=10).headers["ETag"]
        polls["project_304"].append(wrk(big.url + GET, args=("304",), duration=WRK_S,
                                        headers=(f"If-None-Match: {etag}",)))
    b.fig["poll"] = {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in polls.items()}


def push(b: Bench) -> None:
    """POST -> 1 client, POST -> the last of FANOUT_CLIENTS, and RSS meanwhile; the ceiling, then the project."""
    for name, key in (("ceiling", "push_ceiling"), ("big", "push_project")):
        srv = b.server(name)
        b.fig[key] = sockbench.push_figures(srv.url, srv.url, token(0), FANOUT_CLIENTS,
                                            rss_probe=lambda s=srv: rss_mb(pid_of(s)))


def hand(b: Bench) -> None:
    """Mock pin edge -> the new total visible in Chromium, p50 of 10 hands."""
    seed_poll = {"seed_poll_avg_ms": SEED_POLL_S / 2 * 1000, "seed_poll_worst_ms": SEED_POLL_S * 1000}
    found = handbench.measure(b.server("big").url, RUN, CHROMIUM, hands=10)
    b.fig["hand_to_screen"] = {"p50_ms": found["p50_s"] * 1000,
                               "samples_ms": [x * 1000 for x in found["latencies_s"]], **seed_poll}


def hand_missing(error: str) -> dict[str, Any]:
    """The hand figure when Chromium could not run."""
    return {"p50_ms": float("inf"), "error": error, "seed_poll_avg_ms": SEED_POLL_S / 2 * 1000,
            "seed_poll_worst_ms": SEED_POLL_S * 1000}


def cluster_step(b: Bench) -> None:
    """Two processes on PostgreSQL + Redis against one process on PostgreSQL (bench/cluster.py)."""
    b.fig["cluster"] = cluster.measure(RUN, REPS, WRK_S, FANOUT_CLIENTS, b.events, b.say)


def ceiling(b: Bench) -> RefServer:
    """The ceiling, pushing what the project pushes per use (full figures or a delta) in the same shape."""
    big = b.server("big").url
    answer = requests.get(big + GET, timeout=30)
    answer.raise_for_status()
    (RUN / "payload.json").write_bytes(answer.content)
    b.res["payload_bytes"] = len(answer.content)
    event = sockbench.pushed_event(big, token(0))
    b.res["push_event"] = event
    return RefServer("ref_ceiling.py", "--payload", str(RUN / "payload.json"),
                     "--push", "delta" if event == "donnees_delta" else "full")

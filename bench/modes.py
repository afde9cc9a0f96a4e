"""The `modes` step: the three server stacks (`async_mode`) side by side, each against its own ceiling.

For each mode: the project on its own 10,000-event store (100 dispensers) and Flask-SocketIO with do-nothing
handlers served the same way (bench/ref_ceiling.py --mode), then a fleet of 1,000 dispensers with 20 dashboards.
Every wrk figure is taken in rounds that visit the modes in turn (each first in turn), so that the machine's load
falls on all of them alike.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import requests

from app.config import ServerConfig
from bench import cluster, sockbench
from bench.common import median, now_iso, pid_of, rss_mb, use_each, wrk
from bench.context import GET, POST, RUN, SMALL_EVENTS, RefServer, token, write_config
from devkit.servers import ServerProcess
from tools.fleet_layout import write_fleet

if TYPE_CHECKING:
    from bench.context import Bench

MODES = tuple(os.environ.get("BENCH_MODES", "eventlet,gevent,threading").split(","))
REPS, WRK_S = 3, 3
FANOUT_CLIENTS = 1000
FLEET, DASHBOARDS = 1000, 20
PACED_ROUNDS, PACED_USES = 3, 100  # 300 uses 20 ms apart per server, in 3 rounds that alternate the servers


def servers(b: Bench, mode: str) -> tuple[ServerProcess, RefServer]:
    """The project on a 10k-event store and the ceiling, both in `mode`."""
    config = write_config(RUN / f"mode-{mode}", "usage.db", async_mode=mode)
    b.fill(config, SMALL_EVENTS)
    project = ServerProcess(config)
    b.running[f"mode-{mode}"] = project  # registered first, so that a failed start is still stopped
    project.start(60)
    payload = RUN / f"mode-{mode}" / "payload.json"
    answer = requests.get(project.url + GET, timeout=30)
    answer.raise_for_status()
    payload.write_bytes(answer.content)
    ceiling = RefServer("ref_ceiling.py", "--mode", mode, "--payload", str(payload), "--push", "delta")
    b.running[f"ceiling-{mode}"] = ceiling
    ceiling.start()
    return project, ceiling


def rounds(targets: dict[str, tuple[str, str, tuple[str, ...], Any]]) -> dict[str, dict[str, Any]]:
    """wrk on each target (url, script, args, headers or a function giving them just before the run), REPS rounds,
    each target first in turn; medians."""
    runs: dict[str, list] = {k: [] for k in targets}
    names = list(targets)
    for rep in range(REPS):
        for k in names[rep % len(names):] + names[:rep % len(names)]:
            url, script, args, headers = targets[k]
            runs[k].append(wrk(url, script, args, WRK_S, headers=headers() if callable(headers) else headers))
    return {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in runs.items()}


def unchanged(url: str) -> tuple[str]:
    """The If-None-Match header of the figures as they are now."""
    return (f"If-None-Match: {requests.get(url + GET, timeout=10).headers['ETag']}",)


def fleet_rate(b: Bench) -> dict[str, Any]:
    """Single-event POSTs/s with FLEET dispensers in groups and DASHBOARDS joined, each mode in turn."""
    urls = {}
    for mode in MODES:
        config, _ = write_fleet(RUN / f"mode-fleet-{mode}", FLEET, {
            "database": "sqlite:///usage.db", "async_mode": mode, "log_level": "INFO"}, token_of=token)
        srv = ServerProcess(config)
        b.running[f"mode-fleet-{mode}"] = srv
        srv.start(60)
        use_each(srv.url, [token(i) for i in range(FLEET)])
        urls[mode] = srv.url
    with cluster.dashboards([url for url in urls.values() for _ in range(DASHBOARDS)]):
        found = rounds({m: (u + POST, "post.lua", (f"m{m}", "1", str(FLEET)), ()) for m, u in urls.items()})
        rss = {m: rss_mb(pid_of(b.running[f"mode-fleet-{m}"])) for m in urls}
    for mode in MODES:
        b.running.pop(f"mode-fleet-{mode}").stop()
    return {m: {**found[m], "rss_mb": rss[m]} for m in MODES}


def step(b: Bench) -> None:
    """Each mode's figures and its ceiling's, in one run on one machine."""
    pairs = {mode: servers(b, mode) for mode in MODES}
    fig: dict[str, Any] = {"date": now_iso(), "loadavg_at_start": os.getloadavg()[0], "modes": list(MODES),
                           "default": ServerConfig.async_mode}
    targets: dict[str, tuple] = {}
    for mode, (project, ceiling) in pairs.items():
        targets[f"{mode}/post"] = (project.url + POST, "post.lua", (f"s{mode}",), ())
        targets[f"{mode}/ceiling_post"] = (ceiling.url + POST, "post.lua", (f"c{mode}",), ())
    posts = rounds(targets)
    batches = rounds({m: (p.url + POST, "post.lua", (f"b{m}", "100"), ()) for m, (p, _) in pairs.items()})
    targets = {}
    for mode, (project, ceiling) in pairs.items():
        # The ETag read just before each run: a flag may move with time between runs (a dispenser going offline).
        targets[f"{mode}/poll_304"] = (project.url + GET, "get.lua", ("304",), lambda url=project.url: unchanged(url))
        targets[f"{mode}/ceiling_get"] = (ceiling.url + GET, "get.lua", ("200",), ())
    polls = rounds(targets)
    paced: dict[str, list[float]] = {}
    for _ in range(PACED_ROUNDS):  # one dashboard, uses 20 ms apart: the tail of the push, modes in turn
        for mode, (project, ceiling) in pairs.items():
            paced.setdefault(mode, []).extend(sockbench.paced_push(project.url, token(0), PACED_USES))
            paced.setdefault(f"ceiling-{mode}", []).extend(sockbench.paced_push(ceiling.url, token(0), PACED_USES))
    for mode, (project, ceiling) in pairs.items():
        b.say(f"modes: {mode} pushes")
        fig[mode] = {
            "post_rps": posts[f"{mode}/post"]["rps"], "ceiling_post_rps": posts[f"{mode}/ceiling_post"]["rps"],
            "batch100_events_per_s": batches[mode]["rps"] * 100,
            "poll_304_rps": polls[f"{mode}/poll_304"]["rps"], "ceiling_get_rps": polls[f"{mode}/ceiling_get"]["rps"],
            "paced": sockbench.tail(paced[mode]), "ceiling_paced": sockbench.tail(paced[f"ceiling-{mode}"]),
            "push": _push(project.url, lambda s=project: rss_mb(pid_of(s))),
            "ceiling_push": _push(ceiling.url, lambda s=ceiling: rss_mb(pid_of(s))),
        }
        project.stop()
        ceiling.stop()
    for mode, found in fleet_rate(b).items():
        fig[mode]["fleet_post_rps"], fig[mode]["fleet_rss_mb"] = found["rps"], found["rss_mb"]
    b.fig["modes"] = fig


def _push(url: str, rss: Any) -> dict[str, Any]:
    """1-client p50/p99 and the last of FANOUT_CLIENTS, with the RSS while they are connected (no samples kept)."""
    found = sockbench.push_figures(url, url, token(0), FANOUT_CLIENTS, rss_probe=rss)
    return {k: v for k, v in found.items() if not k.endswith("_samples_ms")}


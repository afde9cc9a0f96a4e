"""`make bench`: every figure against references started in the same run; writes results.json and BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cluster  # noqa: E402
import handbench  # noqa: E402
import sockbench  # noqa: E402
from common import (  # noqa: E402
    BENCH,
    PY,
    ROOT,
    WORK,
    RefServer,
    ServerProcess,
    cpu_seconds,
    median,
    now_iso,
    pid_of,
    rss_mb,
    token,
    wait_for,
    write_config,
    wrk,
)
from prefill import prefill  # noqa: E402

BIG_EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
SMALL_EVENTS = 10_000
REPS = 3  # interleaved repetitions of every wrk run; the median is kept
WRK_S = 3
IDLE_S = int(os.environ.get("BENCH_IDLE_S", "60"))
FANOUT_CLIENTS = 1000
CHROMIUM = "/usr/bin/chromium"
SEED_POLL_S = 5.0
RUN = WORK / "run"
log_t0 = time.monotonic()


def say(msg: str) -> None:
    """Progress on stderr with the elapsed time."""
    print(f"[{time.monotonic() - log_t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """nproc, CPU model, kernel and the versions that matter."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {
        "date": now_iso(), "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "python": platform.python_version(), "flask": version("flask"), "flask_socketio": version("flask-socketio"),
        "eventlet": version("eventlet"), "sqlalchemy": version("sqlalchemy"), "sqlite": __import__("sqlite3")
        .sqlite_version, "loadavg_at_start": os.getloadavg()[0],
    }


class IdleCpu:
    """The event-driven dispenser (`dispenser.py --simulate`, no hands) beside the seed's 100 ms polling loop."""

    def __init__(self, server_url: str):
        cfg = RUN / "idle-dispenser.toml"
        cfg.write_text(
            "[dispenser]\n" + f'id = "d001"\nserver_url = "{server_url}"\ntoken = "{token(1)}"\n'
            + f'sensor_pin = 17\nservo_pin = 18\ndose_ml = 1.5\nspool = "{RUN / "spool-idle.db"}"\n'
            + 'simulate_mean_interval_s = 1e9\nlog_level = "WARNING"\n', encoding="utf-8")
        logf = (RUN / "idle.log").open("ab")
        self.procs = {
            "dispenser": subprocess.Popen([PY, str(ROOT / "dispenser.py"), "--simulate", "--config", str(cfg)],
                                          cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT),
            "seed_loop": subprocess.Popen([PY, str(BENCH / "seed_poll.py")], cwd=ROOT, stdout=logf,
                                          stderr=subprocess.STDOUT),
        }
        self.t0: float | None = None
        self.cpu0: dict[str, float] = {}

    def begin(self) -> None:
        """Start the window (after imports and start-up are over)."""
        self.t0 = time.monotonic()
        self.cpu0 = {k: cpu_seconds(p.pid) for k, p in self.procs.items()}

    def end(self) -> dict[str, float]:
        """CPU % of one core over the window, per process; then stop them."""
        span = time.monotonic() - self.t0
        out = {f"{k}_pct": 100 * (cpu_seconds(p.pid) - self.cpu0[k]) / span for k, p in self.procs.items()}
        out["window_s"] = span
        self.stop()
        return out

    def stop(self) -> None:
        """SIGTERM both (idempotent), SIGKILL what does not exit."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def post_rates(servers: dict[str, Any]) -> dict[str, dict]:
    """Single-event POSTs/s, 8 connections, REPS interleaved rounds per server."""
    runs: dict[str, list] = {k: [] for k in servers}
    for rep in range(REPS):
        for name, srv in servers.items():
            r = wrk(srv.url + "/mettre_a_jour_donnees", "post.lua", (f"p{rep}{name}{time.time_ns()}",), WRK_S)
            runs[name].append(r)
    return {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in runs.items()}


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
            assert r.status_code == 200, r.text
    return median(times[1:]) * 1000  # the first one warms caches


def main() -> int:
    """Run every step, write bench/results.json and the table in BENCHMARKS.md."""
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    res: dict[str, Any] = {"machine": machine(), "figures": {}, "notes": []}
    fig = res["figures"]
    started: list[Any] = []
    idle: IdleCpu | None = None

    def start(srv: Any) -> Any:
        started.append(srv)
        return srv.start()

    try:
        cfg_big = write_config(RUN / "big", "usage.db")
        cfg_small = write_config(RUN / "small", "usage.db")
        cfg_empty = write_config(RUN / "empty", "usage.db")
        empty = start(ServerProcess(cfg_empty))
        idle = IdleCpu(empty.url)
        say("idle dispenser + seed loop started; prefilling")
        # The window starts once both have imported their modules and settled (3 s after they used CPU).
        wait_for(lambda: all(cpu_seconds(p.pid) > 0.05 for p in idle.procs.values()), 20, message="idle procs")
        settle = time.monotonic() + 3
        res["prefill_s"] = {"small": prefill(cfg_small, SMALL_EVENTS)}
        while time.monotonic() < settle:
            time.sleep(0.2)
        idle.begin()
        res["prefill_s"]["big"] = prefill(cfg_big, BIG_EVENTS)
        say(f"prefilled {BIG_EVENTS} events in {res['prefill_s']['big']:.1f}s")
        left = IDLE_S - (time.monotonic() - idle.t0)
        if left > 0:
            time.sleep(left)  # the idle window must be IDLE_S long even when the prefill is quick
        fig["idle_cpu"] = idle.end()
        say(f"idle cpu {fig['idle_cpu']}")

        big = start(ServerProcess(cfg_big))
        small = start(ServerProcess(cfg_small))
        payload = requests.get(big.url + "/obtenir_donnees_utilisation", timeout=30).json()
        (RUN / "payload.json").write_text(json.dumps(payload), encoding="utf-8")
        seed = start(RefServer("ref_seed.py"))
        ceiling = start(RefServer("ref_ceiling.py", "--payload", str(RUN / "payload.json")))

        fig["history_ms"] = {"big": history_ms(big.url), "small": history_ms(small.url)}
        say(f"history {fig['history_ms']}")
        small.stop()

        fig["post"] = post_rates({"seed": seed, "ceiling": ceiling, "empty": empty, "big": big})
        say("post " + str({k: v["rps"] for k, v in fig["post"].items()}))
        # The rates above are headless (no push is built when nobody listens); the same with one wall display.
        with cluster.dashboards([big.url]):
            shown = [wrk(big.url + "/mettre_a_jour_donnees", "post.lua", (f"d{i}{time.time_ns()}",), WRK_S)
                     for i in range(REPS)]
        fig["post_with_dashboard"] = {"rps": median([r["rps"] for r in shown]), "runs": shown}
        say(f"post with a dashboard {fig['post_with_dashboard']['rps']:.0f}/s")
        empty.stop()
        seed.stop()

        batch = [wrk(big.url + "/mettre_a_jour_donnees", "post.lua", (f"b{i}{time.time_ns()}", "100"), WRK_S)
                 for i in range(REPS)]
        fig["batch100"] = {"events_per_s": median([r["rps"] for r in batch]) * 100, "runs": batch}
        say(f"batch {fig['batch100']['events_per_s']:.0f} events/s")

        polls: dict[str, list] = {"ceiling_get": [], "project_304": []}
        for _ in range(REPS):
            polls["ceiling_get"].append(wrk(ceiling.url + "/obtenir_donnees_utilisation", duration=WRK_S))
            etag = requests.get(big.url + "/obtenir_donnees_utilisation", timeout=10).headers["ETag"]
            polls["project_304"].append(wrk(big.url + "/obtenir_donnees_utilisation", duration=WRK_S,
                                            headers=(f"If-None-Match: {etag}",)))
        fig["poll"] = {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in polls.items()}
        say("poll " + str({k: v["rps"] for k, v in fig["poll"].items()}))

        for name, srv in (("ceiling", ceiling), ("project", big)):
            fig[f"push_{name}"] = sockbench.push_figures(srv.url, srv.url, token(0), FANOUT_CLIENTS,
                                                          rss_probe=lambda s=srv: rss_mb(pid_of(s)))
            say(f"push {name} {fig[f'push_{name}']}")
        ceiling.stop()

        seed_poll = {"seed_poll_avg_ms": SEED_POLL_S / 2 * 1000, "seed_poll_worst_ms": SEED_POLL_S * 1000}
        try:  # the most fragile step (Chromium, the dashboard's DOM): a failure is reported, not fatal
            hand = handbench.measure(big.url, RUN, CHROMIUM, hands=10)
            fig["hand_to_screen"] = {"p50_ms": hand["p50_s"] * 1000,
                                     "samples_ms": [x * 1000 for x in hand["latencies_s"]], **seed_poll}
        except Exception as exc:
            fig["hand_to_screen"] = {"p50_ms": float("inf"), "error": repr(exc)[:200], **seed_poll}
        say(f"hand {fig['hand_to_screen']['p50_ms']:.0f} ms")
        big.stop()

        say("cluster: 2 processes on PostgreSQL + Redis, 1 process on PostgreSQL")
        try:  # needs PostgreSQL and Redis on this machine: a failure is reported, not fatal
            fig["cluster"] = cluster.measure(RUN, REPS, WRK_S, FANOUT_CLIENTS, BIG_EVENTS, say)
        except Exception as exc:
            msg = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
            fig["cluster"] = {"error": " ".join(msg.replace("|", "/").split())[:200]}
        say(f"cluster {fig['cluster'].get('error', 'done')}")
    finally:
        if idle is not None:
            idle.stop()
        for srv in started:
            srv.stop()
    res["total_s"] = time.monotonic() - log_t0
    res["goals"] = goals(fig)
    (BENCH / "results.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    write_markdown(res)
    say(f"done in {res['total_s']:.0f}s: {sum(g['met'] for g in res['goals'])}/{len(res['goals'])} goals met")
    return 0


def goals(fig: dict) -> list[dict]:
    """Every figure, its goal and whether it is met."""
    post, poll = fig["post"], fig["poll"]
    pc, pp = fig["push_ceiling"], fig["push_project"]
    big = post["big"]["rps"]
    rows = [
        ("Single-event durable POSTs/s, 8 connections, 1M events stored",
         f"{big:.0f}/s (seed {post['seed']['rps']:.0f}, ceiling {post['ceiling']['rps']:.0f}, "
         f"empty store {post['empty']['rps']:.0f}; all headless; with one wall display connected "
         f"{fig['post_with_dashboard']['rps']:.0f})", ">= 1.5x seed", big / post["seed"]["rps"], 1.5, ">="),
        ("", "", ">= 0.5x ceiling", big / post["ceiling"]["rps"], 0.5, ">="),
        ("", "", ">= 0.9x own rate on an empty store", big / post["empty"]["rps"], 0.9, ">="),
        ("Events/s in batches of 100", f"{fig['batch100']['events_per_s']:.0f}/s", ">= 40,000/s",
         fig["batch100"]["events_per_s"], 40000, ">="),
        ("Unchanged poll (If-None-Match -> 304), requests/s",
         f"{poll['project_304']['rps']:.0f}/s (ceiling plain GET {poll['ceiling_get']['rps']:.0f})",
         ">= 0.8x ceiling", poll["project_304"]["rps"] / poll["ceiling_get"]["rps"], 0.8, ">="),
        ("POST -> 1 Socket.IO client has the figures, p99",
         f"{pp['one_client_p99_ms']:.1f} ms (ceiling {pc['one_client_p99_ms']:.1f} ms)", "<= 1.5x ceiling",
         pp["one_client_p99_ms"] / pc["one_client_p99_ms"], 1.5, "<="),
        (f"POST -> last of {FANOUT_CLIENTS} clients has it, median",
         f"{pp['fanout_last_median_ms']:.0f} ms (ceiling {pc['fanout_last_median_ms']:.0f} ms)", "<= 1.3x ceiling",
         pp["fanout_last_median_ms"] / pc["fanout_last_median_ms"], 1.3, "<="),
        (f"Server RSS, {FANOUT_CLIENTS} sockets, after 1M events",
         f"{pp['rss_mb']:.0f} MB (ceiling {pc['rss_mb']:.0f} MB)", "<= ceiling + 30 MB",
         pp["rss_mb"] - pc["rss_mb"], 30, "<="),
        ("History, 30 days per day, 100 dispensers",
         f"{fig['history_ms']['big']:.1f} ms over 1M events ({fig['history_ms']['small']:.1f} ms over 10k)",
         "<= 2x the 10k query", fig["history_ms"]["big"] / fig["history_ms"]["small"], 2, "<="),
        ("Hand (mock pin edge) -> figure visible in Chromium, p50",
         f"{fig['hand_to_screen']['p50_ms']:.0f} ms (seed poll: 2,500 ms average, 5,000 ms worst, analytic)"
         if "error" not in fig["hand_to_screen"] else f"not measured: {fig['hand_to_screen']['error']}",
         ">= 20x sooner than 2.5 s", fig["hand_to_screen"]["seed_poll_avg_ms"] / fig["hand_to_screen"]["p50_ms"],
         20, ">="),
        (f"Dispenser idle CPU over {fig['idle_cpu']['window_s']:.0f} s",
         f"{fig['idle_cpu']['dispenser_pct']:.3f} % (seed-style 100 ms loop: {fig['idle_cpu']['seed_loop_pct']:.3f} %)",
         "<= 0.5 %", fig["idle_cpu"]["dispenser_pct"], 0.5, "<="),
    ]
    rows += cluster_rows(fig["cluster"], pc)
    out = []
    for figure, value, goal, measured, limit, op in rows:
        met = measured is not None and (measured >= limit if op == ">=" else measured <= limit)
        out.append({"figure": figure, "value": value, "goal": goal,
                    "measured": None if measured is None else round(measured, 3), "met": met})
    return out


def cluster_rows(cl: dict, pc: dict) -> list[tuple]:
    """The rows of the cluster step (2 processes on PostgreSQL + Redis), or "not measured" with its reason."""
    label = f"2 processes, PostgreSQL + Redis, {cl.get('store_events', BIG_EVENTS):,} events stored"
    info = "informative: >= 1.5x one process (2 cores, shared with wrk and PostgreSQL)"
    figures = [f"{label}: single-event POSTs/s, 8 connections (4 per process)",
               f"{label}: events/s in batches of 100, 8 connections (4 per process)",
               f"{label}: POST to process A -> 1 Socket.IO client on process B has the figures, p99",
               f"{label}: POST to A -> last of {FANOUT_CLIENTS} clients ({FANOUT_CLIENTS // 2} on each) has it, median"]
    goals_ops = [(info, 1.5, ">="), (info, 1.5, ">="), ("<= 1.5x ceiling", 1.5, "<="), ("<= 1.3x ceiling", 1.3, "<=")]
    if "error" in cl:
        values = [(f"not measured: {cl['error']}", None)] * len(figures)
    else:
        post, batch, push = cl["post"], cl["batch100"], cl["push"]
        values = [
            (f"{post['pair']['rps']:.0f}/s (1 process on PostgreSQL, 8 connections: {post['one']['rps']:.0f}/s)",
             post["pair"]["rps"] / post["one"]["rps"]),
            (f"{batch['pair']['events_per_s']:.0f}/s (1 process on PostgreSQL: {batch['one']['events_per_s']:.0f}/s)",
             batch["pair"]["events_per_s"] / batch["one"]["events_per_s"]),
            (f"{push['one_client_p99_ms']:.1f} ms (ceiling, 1 process: {pc['one_client_p99_ms']:.1f} ms)",
             push["one_client_p99_ms"] / pc["one_client_p99_ms"]),
            (f"{push['fanout_last_median_ms']:.0f} ms (ceiling, 1 process: {pc['fanout_last_median_ms']:.0f} ms)",
             push["fanout_last_median_ms"] / pc["fanout_last_median_ms"]),
        ]
    return [(f, v, g, m, lim, op) for f, (v, m), (g, lim, op) in zip(figures, values, goals_ops, strict=True)]


def write_markdown(res: dict) -> None:
    """Rewrite the results table (between the markers) in BENCHMARKS.md, keeping the prose around it."""
    m = res["machine"]
    lines = [
        f"Run {m['date']} on {m['nproc']} cores, {m['cpu']}, Linux {m['kernel']} (load average at start "
        f"{m['loadavg_at_start']:.1f}); Python {m['python']}, Flask {m['flask']}, Flask-SocketIO "
        f"{m['flask_socketio']}, eventlet {m['eventlet']}, SQLAlchemy {m['sqlalchemy']}, SQLite {m['sqlite']}. "
        f"Whole run: {res['total_s']:.0f} s (prefill of 1M events: {res['prefill_s']['big']:.0f} s; cluster step: "
        f"{res['figures']['cluster'].get('step_s', 0):.0f} s).",
        "",
        "| Figure | Measured | Goal | Ratio / value | Met |",
        "|---|---|---|---|---|",
    ]
    for g in res["goals"]:
        measured = "-" if g["measured"] is None else f"{g['measured']:g}"
        lines.append(f"| {g['figure']} | {g['value']} | {g['goal']} | {measured} | "
                     f"{'met' if g['met'] else '**not met**'} |")
    table = "\n".join(lines)
    path = ROOT / "BENCHMARKS.md"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmarks\n\n{start}\n{end}\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())

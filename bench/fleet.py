"""The `fleet` step (issue 12): 1,000 dispensers in groups and 20 dashboards, beside the same run with 10.

Both servers run side by side (tools/fleet_layout.py's hospital: site, buildings, floors, wards of 10), each with
one use per dispenser first (none is "never seen") and 20 raw Socket.IO dashboards joined to the whole fleet as
the page joins. Then: single-event POSTs/s (wrk, rounds interleaved), the page in Chromium (bench/fleetpage.py)
and the server's RSS after all that load.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from bench import cluster, fleetpage
from bench.common import ADMIN, BENCH, RUN, WORK, Fault, median, now_iso, pid_of, rss_mb, token, wrk
from devkit.servers import ServerProcess
from tools.fleet_layout import write_fleet

if TYPE_CHECKING:
    from bench.run import Bench

# Smaller sizes for development: BENCH_FLEET="10,50" BENCH_FLEET_DASHBOARDS=2 BENCH_FLEET_WINDOW_S=3.
SMALL, BIG = (int(x) for x in os.environ.get("BENCH_FLEET", "10,1000").split(","))
DASHBOARDS = int(os.environ.get("BENCH_FLEET_DASHBOARDS", "20"))
WINDOW_S = float(os.environ.get("BENCH_FLEET_WINDOW_S", "10"))  # two of the page's 5 s polls fall in it
REPS, WRK_S = 3, 3
LOADS = 3  # cold loads of the page for the first figures; the median is kept
DESK_RATE, KIOSK_RATE = 5.0, 20.0  # uses per second while the page's bytes, then the kiosk's long tasks, are taken
KIB = 1024


def start(b: Bench, n: int) -> ServerProcess:
    """A server for `n` dispensers in groups (bench tokens, reservoirs too big to empty), each used once."""
    server = {"database": "sqlite:///usage.db", "async_mode": "eventlet", "admin_token": ADMIN, "log_level": "INFO"}
    config, _ = write_fleet(RUN / f"fleet-{n}", n, server, token_of=token)
    _big_reservoirs(config.with_name("dispensers.csv"))
    srv = ServerProcess(config)
    b.running[f"fleet-{n}"] = srv  # registered first, so that a failed start is still stopped
    srv.start(60)
    _use_each(srv.url, n)
    return srv


def _big_reservoirs(path: Path) -> None:
    """Capacities of 1,000,000 ml as in the other stores: the load never empties one, so no alert moves."""
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    column = rows[0].index("capacity_ml")
    for row in rows[1:]:
        row[column] = "1000000"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _use_each(url: str, n: int) -> None:
    """One use per dispenser, 8 at a time: a fleet in service, not one of dispensers never seen."""

    def one(i: int) -> None:
        resp = requests.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                             headers={"Authorization": f"Bearer {token(i)}"}, timeout=30)
        if resp.status_code != 200:
            raise Fault(f"first use of dispenser {i}: {resp.status_code} {resp.text[:200]}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


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


@dataclass(frozen=True)
class Line:
    """One figure of the fleet table: both sizes' values, the goal, what is compared and how."""

    figure: str
    small: str
    big: str
    goal: str
    measured: float | None
    limit: float
    op: str


def lines(f: dict) -> list[Line]:
    """The fleet figures with their goals (at the big size, against the small one where the goal says so)."""
    s = f["dispensers"]["small"]
    post, page, rss = f["post"], f["page"], f["rss_mb"]
    ps, pb = page["small"], page["big"]
    return [
        Line(f"Single-event POSTs/s (wrk, 8 connections, uuid4 ids, every dispenser in turn), {f['dashboards']} "
             "dashboards connected", f"{post['small']['rps']:.0f}/s", f"{post['big']['rps']:.0f}/s",
             f">= 0.8x {s} dispensers", post["big"]["rps"] / post["small"]["rps"], 0.8, ">="),
        Line(f"Bytes received by the page (`/`) per use, websocket frames + polls, {f['desk_uses_per_s']:g} uses/s "
             f"for {f['window_s']:g} s, first load aside", _bytes(ps), _bytes(pb), "<= 2 KiB",
             pb["bytes_per_use"], 2 * KIB, "<="),
        Line(f"First figures in Chromium (navigation start -> totals written in the frame that paints them), "
             f"median of {len(pb['first_samples_ms'])} cold loads", f"{ps['first_figures_ms']:.0f} ms",
             f"{pb['first_figures_ms']:.0f} ms", "<= 1 s", pb["first_figures_ms"], 1000, "<="),
        Line(f"Longest main-thread task on the kiosk (`/?kiosk=1`, 1920x1080) while {f['kiosk_uses_per_s']:g} uses/s "
             f"arrive for {f['window_s']:g} s", _tasks(ps), _tasks(pb), "no task over 50 ms",
             pb["kiosk_longest_ms"], 50, "<="),
        Line("Server RSS after the load (/proc VmRSS)", f"{rss['small']:.0f} MB", f"{rss['big']:.0f} MB",
             f"<= {s} dispensers + 20 MB", rss["big"] - rss["small"], 20, "<="),
    ]


def _bytes(p: dict) -> str:
    """Bytes per use, and with every other answer (the chart's reads) counted too."""
    return f"{p['bytes_per_use']:.0f} B ({p['all_bytes_per_use']:.0f} B with the chart's reads)"


def _tasks(p: dict) -> str:
    """The longest task and how many went over 50 ms, at the rate achieved."""
    over = len(p["kiosk_long_tasks_ms"])  # a long task is one over 50 ms
    pages = f"{p['kiosk_pages']} page{'s' if p['kiosk_pages'] > 1 else ''}"
    if p["kiosk_pages"] > 1:
        pages += f", {p['kiosk_page_turns']} turned meanwhile"
    context = f"{p['kiosk_uses_per_s']:.1f} uses/s achieved, {pages}"
    if "kiosk_longest_traced" in p:  # figures from before the window was traced have no such key
        wall, cpu = p["kiosk_longest_traced"]
        context = (f"traced: longest task {wall:.0f} ms wall, {cpu:.0f} ms main-thread CPU; most CPU in one task "
                   f"{p['kiosk_most_cpu_ms']:.0f} ms; {context}")
    return f"{p['kiosk_longest_ms']:.0f} ms ({over} over 50 ms; {context})" if over else f"none over 50 ms ({context})"


def rows(fig: dict) -> list[tuple[str, str, str, float | None, float, str]]:
    """The goals table's rows (report_rows.BUILDERS): the big fleet's value, the small one's in brackets."""
    f = fig["fleet"]
    if "error" in f:
        return [("Fleet (issue 12): 1,000 dispensers, 20 dashboards", f"not measured: {f['error']}", "", None, 0, "<=")]
    g, s = f["dispensers"]["big"], f["dispensers"]["small"]
    return [(f"Fleet of {g:,}: {x.figure}", f"{x.big} ({s} dispensers: {x.small})", x.goal, x.measured, x.limit, x.op)
            for x in lines(f)]


def table(res: dict) -> str:
    """The fleet table of BENCHMARKS.md from one run's results: both sizes side by side."""
    f, step_s = res["figures"]["fleet"], res.get("step_s", {}).get("fleet")
    if "error" in f:
        return f"The fleet step was not measured in this run: {f['error']}."
    s, g = f["dispensers"]["small"], f["dispensers"]["big"]
    took = f" The step took {step_s:.0f} s." if step_s else ""
    when = f.get("date", res["machine"]["date"])  # the step's own date (an --only run merged later has its own)
    load = f.get("loadavg_at_start", res["machine"]["loadavg_at_start"])
    out = [f"Measured {when} (load average at start {load:.1f}): {g:,} dispensers against {s}, "
           f"both servers running side by side, {f['dashboards']} dashboards connected to each throughout.{took}", "",
           f"| Figure | {s} dispensers | {g:,} dispensers | Goal | Ratio / value | Met |", "|---|---|---|---|---|---|"]
    for x in lines(f):
        met = x.measured is not None and (x.measured >= x.limit if x.op == ">=" else x.measured <= x.limit)
        out.append(f"| {x.figure} | {x.small} | {x.big} | {x.goal} | {round(x.measured, 3):g} | "
                   f"{'met' if met else '**not met**'} |")
    return "\n".join(out)


def merge(partial: Path = WORK / "partial.json", results: Path = BENCH / "results.json") -> None:
    """Put the fleet figures of an `--only fleet` run into results.json, its goals and the docs (dated apart)."""
    from bench import report

    part, res = json.loads(partial.read_text(encoding="utf-8")), json.loads(results.read_text(encoding="utf-8"))
    res["figures"]["fleet"] = part["figures"]["fleet"]
    res.setdefault("step_s", {})["fleet"] = part["step_s"]["fleet"]
    res["goals"] = report.goals(res["figures"])
    results.write_text(json.dumps(res, indent=2), encoding="utf-8")
    report.write_docs(res)


if __name__ == "__main__":  # python -m bench.fleet merge: after `python -m bench.run --only fleet`
    if sys.argv[1:] != ["merge"]:
        sys.exit("usage: python -m bench.fleet merge")
    merge()

"""The goals table's rows: (figure, measured value, goal, ratio or value, limit, ">=" or "<="), for what was run."""

from __future__ import annotations

from collections.abc import Callable

from bench.report import alertbytes, fleet, modes, notify, retention

Row = tuple[str, str, str, float | None, float, str]
FANOUT = 1000


def _post(fig: dict) -> list[Row]:
    post, big = fig["post"], fig["post"]["big"]["rps"]
    dash = fig.get("post_with_dashboard", {}).get("rps", float("nan"))
    return [
        ("Single-event durable POSTs/s, 8 connections, 1M events stored",
         f"{big:.0f}/s (seed {post['seed']['rps']:.0f}, ceiling {post['ceiling']['rps']:.0f}, "
         f"empty store {post['empty']['rps']:.0f}; all headless; with one wall display connected {dash:.0f})",
         ">= 1.5x seed", big / post["seed"]["rps"], 1.5, ">="),
        ("", "", ">= 0.5x ceiling", big / post["ceiling"]["rps"], 0.5, ">="),
        ("", "", ">= 0.9x own rate on an empty store", big / post["empty"]["rps"], 0.9, ">="),
    ]


def _batch(fig: dict) -> list[Row]:
    eps = fig["batch100"]["events_per_s"]
    return [("Events/s in batches of 100", f"{eps:.0f}/s", ">= 40,000/s", eps, 40000, ">=")]


def _poll(fig: dict) -> list[Row]:
    poll = fig["poll"]
    return [("Unchanged poll (If-None-Match -> 304), requests/s",
             f"{poll['project_304']['rps']:.0f}/s (ceiling plain GET {poll['ceiling_get']['rps']:.0f})",
             ">= 0.8x ceiling", poll["project_304"]["rps"] / poll["ceiling_get"]["rps"], 0.8, ">=")]


def _push(fig: dict) -> list[Row]:
    pc, pp = fig["push_ceiling"], fig["push_project"]
    return [
        ("POST -> 1 Socket.IO client has the figures, p99",
         f"{pp['one_client_p99_ms']:.1f} ms (ceiling {pc['one_client_p99_ms']:.1f} ms)", "<= 1.5x ceiling",
         pp["one_client_p99_ms"] / pc["one_client_p99_ms"], 1.5, "<="),
        (f"POST -> last of {FANOUT} clients has it, median",
         f"{pp['fanout_last_median_ms']:.0f} ms (ceiling {pc['fanout_last_median_ms']:.0f} ms)", "<= 1.3x ceiling",
         pp["fanout_last_median_ms"] / pc["fanout_last_median_ms"], 1.3, "<="),
        (f"Server RSS, {FANOUT} sockets, after 1M events",
         f"{pp['rss_mb']:.0f} MB (ceiling {pc['rss_mb']:.0f} MB)", "<= ceiling + 30 MB",
         pp["rss_mb"] - pc["rss_mb"], 30, "<="),
    ]


def _history(fig: dict) -> list[Row]:
    h = fig["history_ms"]
    return [("History, 30 days per day, 100 dispensers",
             f"{h['big']:.1f} ms over 1M events ({h['small']:.1f} ms over 10k)", "<= 2x the 10k query",
             h["big"] / h["small"], 2, "<=")]


def _hand(fig: dict) -> list[Row]:
    hand = fig["hand_to_screen"]
    value = (f"{hand['p50_ms']:.0f} ms, each sample showing the new total (seed poll: 2,500 ms average, "
             f"5,000 ms worst, analytic)" if "error" not in hand else f"not measured: {hand['error']}")
    return [("Hand (mock pin edge) -> new total visible in Chromium, p50", value, ">= 20x sooner than 2.5 s",
             hand["seed_poll_avg_ms"] / hand["p50_ms"], 20, ">=")]


def _idle(fig: dict) -> list[Row]:
    idle = fig["idle_cpu"]
    return [(f"Dispenser idle CPU over {idle['window_s']:.0f} s",
             f"{idle['dispenser_pct']:.3f} % (seed-style 100 ms loop: {idle['seed_loop_pct']:.3f} %)", "<= 0.5 %",
             idle["dispenser_pct"], 0.5, "<=")]


def _cluster(fig: dict) -> list[Row]:
    """The rows of the cluster step (2 processes on PostgreSQL + Redis), or "not measured" with its reason."""
    cl, pc = fig["cluster"], fig.get("push_ceiling")
    label = f"2 processes, PostgreSQL + Redis, {cl.get('store_events', 1_000_000):,} events stored"
    info = "informative: >= 1.5x one process (2 cores, shared with wrk and PostgreSQL)"
    figures = [f"{label}: single-event POSTs/s, 8 connections (4 per process)",
               f"{label}: events/s in batches of 100, 8 connections (4 per process)",
               f"{label}: POST to process A -> 1 Socket.IO client on process B has the figures, p99",
               f"{label}: POST to A -> last of {FANOUT} clients ({FANOUT // 2} on each) has it, median"]
    goals_ops = [(info, 1.5, ">="), (info, 1.5, ">="), ("<= 1.5x ceiling", 1.5, "<="), ("<= 1.3x ceiling", 1.3, "<=")]
    if "error" in cl:
        values: list[tuple[str, float | None]] = [(f"not measured: {cl['error']}", None)] * len(figures)
    else:
        post, batch, push = cl["post"], cl["batch100"], cl["push"]
        ceil_p99 = pc["one_client_p99_ms"] if pc else float("nan")
        ceil_fan = pc["fanout_last_median_ms"] if pc else float("nan")
        values = [
            (f"{post['pair']['rps']:.0f}/s (1 process on PostgreSQL, 8 connections: {post['one']['rps']:.0f}/s)",
             post["pair"]["rps"] / post["one"]["rps"]),
            (f"{batch['pair']['events_per_s']:.0f}/s (1 process on PostgreSQL: {batch['one']['events_per_s']:.0f}/s)",
             batch["pair"]["events_per_s"] / batch["one"]["events_per_s"]),
            (f"{push['one_client_p99_ms']:.1f} ms (ceiling, 1 process: {ceil_p99:.1f} ms)",
             push["one_client_p99_ms"] / ceil_p99 if pc else None),
            (f"{push['fanout_last_median_ms']:.0f} ms (ceiling, 1 process: {ceil_fan:.0f} ms)",
             push["fanout_last_median_ms"] / ceil_fan if pc else None),
        ]
    return [(f, v, g, m, lim, op) for f, (v, m), (g, lim, op) in zip(figures, values, goals_ops, strict=True)]


# In the table's order; each builder runs only when its figure was measured. A new step adds its builder here.
BUILDERS: list[tuple[str, Callable[[dict], list[Row]]]] = [
    ("post", _post), ("batch100", _batch), ("poll", _poll), ("push_project", _push), ("history_ms", _history),
    ("hand_to_screen", _hand), ("idle_cpu", _idle), ("fleet", fleet.rows), ("cluster", _cluster),
    ("notify", notify.rows), ("retention", retention.rows),
    ("alertbytes", alertbytes.rows), ("modes", modes.rows),
]


def goal_rows(fig: dict) -> list[Row]:
    """The rows of every figure present in `fig`."""
    return [row for key, build in BUILDERS if key in fig for row in build(fig)]


def goals(fig: dict) -> list[dict]:
    """Every figure measured, its goal and whether it is met."""
    out = []
    for figure, value, goal, measured, limit, op in goal_rows(fig):
        met = measured is not None and (measured >= limit if op == ">=" else measured <= limit)
        out.append({"figure": figure, "value": value, "goal": goal,
                    "measured": None if measured is None else round(measured, 3), "met": met})
    return out

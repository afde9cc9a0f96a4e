"""The modes step's side-by-side table and its goal row, from results.json."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, float | None, float, str]
TAIL_LIMIT = 3.0  # the default mode's push p99 (uses 20 ms apart) against its own ceiling's
NAMES = {"eventlet": "eventlet (its WSGI server)", "gevent": "gevent (pywsgi)",
         "threading": "threading (gunicorn gthread)"}


def _x(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.2f}x" if ceiling else "-"


def _cells(m: dict[str, Any]) -> list[str]:
    """One mode's column, top to bottom: each figure with its ratio to the mode's own ceiling."""
    push, cpush, paced, cpaced = m["push"], m["ceiling_push"], m["paced"], m["ceiling_paced"]
    return [
        f"{m['post_rps']:.0f}/s ({_x(m['post_rps'], m['ceiling_post_rps'])} of {m['ceiling_post_rps']:.0f})",
        f"{m['batch100_events_per_s']:,.0f}/s",
        f"{m['poll_304_rps']:.0f}/s ({_x(m['poll_304_rps'], m['ceiling_get_rps'])} of {m['ceiling_get_rps']:.0f})",
        f"{push['one_client_p99_ms']:.1f} ms (ceiling {cpush['one_client_p99_ms']:.1f})",
        f"{paced['p50_ms']:.1f} / {paced['p99_ms']:.1f} ms ({_x(paced['p99_ms'], cpaced['p99_ms'])} of "
        f"{cpaced['p99_ms']:.1f})",
        f"{push['fanout_last_median_ms']:.0f} ms (ceiling {cpush['fanout_last_median_ms']:.0f})",
        f"{push['rss_mb']:.0f} MB (ceiling {cpush['rss_mb']:.0f})",
        f"{m['fleet_post_rps']:.0f}/s, {m['fleet_rss_mb']:.0f} MB",
    ]


FIGURES = [
    "Single-event POSTs/s, 8 connections (x its ceiling)",
    "Events/s in batches of 100",
    "Unchanged poll (304)/s (x the ceiling's plain GET)",
    "Push p99, 1 client, POSTs back to back",
    "Push p50 / p99, 1 dashboard, uses 20 ms apart (x the ceiling's p99)",
    "Push to the last of 1,000 clients (median)",
    "RSS with 1,000 sockets",
    "Fleet of 1,000 in groups, 20 dashboards: POSTs/s, RSS",
]


def table(res: dict) -> str:
    """The modes side by side, each figure against that mode's own ceiling, with the run's date."""
    fig = res["figures"]["modes"]
    if "error" in fig:
        return f"The modes were not compared in the last run: {fig['error']}"
    modes = [m for m in fig["modes"] if m in fig]
    lines = [f"Measured {fig['date']} (load average at start {fig['loadavg_at_start']:.1f}); default mode: "
             f"`{fig['default']}`.", "",
             "| Figure | " + " | ".join(NAMES.get(m, m) for m in modes) + " |",
             "|---|" + "---|" * len(modes)]
    columns = [_cells(fig[m]) for m in modes]
    for i, name in enumerate(FIGURES):
        lines.append(f"| {name} | " + " | ".join(col[i] for col in columns) + " |")
    return "\n".join(lines)


def rows(fig: dict) -> list[Row]:
    """The goal of the push's tail in the default mode: p99 within TAIL_LIMIT times its ceiling's."""
    m = fig["modes"]
    if "error" in m or m.get("default") not in m:
        return [("Push p99 in the default mode, uses 20 ms apart", f"not measured: {m.get('error', '?')}",
                 f"<= {TAIL_LIMIT:g}x its ceiling", None, TAIL_LIMIT, "<=")]
    own = m[m["default"]]
    p99, ceiling = own["paced"]["p99_ms"], own["ceiling_paced"]["p99_ms"]
    return [(f"Push p99, one dashboard, uses 20 ms apart, default mode ({m['default']})",
             f"{p99:.1f} ms (p50 {own['paced']['p50_ms']:.1f}; ceiling p99 {ceiling:.1f})",
             f"<= {TAIL_LIMIT:g}x its ceiling", p99 / ceiling, TAIL_LIMIT, "<=")]

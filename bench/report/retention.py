"""The retention step's rows in the goals table, from results.json."""

from __future__ import annotations


def rows(fig: dict) -> list[tuple[str, str, str, float | None, float, str]]:
    """The retention step's row: POST p99 during a purge against without one."""
    r = fig["retention"]
    if "error" in r:
        return [("Retention: POST p99 during a purge of old events", f"not measured: {r['error']}",
                 "<= 2x without", None, 2.0, "<=")]
    during, without = r["post"]["purging"], r["post"]["without"]
    return [(f"Single-event POST p99 during a purge of {r['events']:,} old events "
             f"({r['purge_events_per_s']:,.0f} deleted/s; file {r['bytes_before'] / 2**20:,.0f} -> "
             f"{r['bytes_after'] / 2**20:,.0f} MiB)",
             f"{during['p99_ms']:.1f} ms (without a purge: {without['p99_ms']:.1f} ms)", "<= 2x without",
             during["p99_ms"] / without["p99_ms"], 2.0, "<=")]

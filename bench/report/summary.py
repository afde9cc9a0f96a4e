"""The progress line of a step: the headline numbers of the figures it measured."""

from __future__ import annotations

from typing import Any

SUMMARY_KEYS = ("rps", "events_per_s", "p50_ms", "one_client_p99_ms", "fanout_last_median_ms", "rss_mb", "big",
                "small", "dispenser_pct", "seed_loop_pct", "error", "first_figures_ms", "bytes_per_use",
                "kiosk_longest_ms", "p99_ms", "purge_events_per_s")
STEP_FIGURES = {"idle": ("idle_cpu",), "history": ("history_ms",), "post": ("post", "post_with_dashboard"),
                "batch": ("batch100",), "poll": ("poll",), "push": ("push_ceiling", "push_project"),
                "hand": ("hand_to_screen",), "fleet": ("fleet",), "cluster": ("cluster",),
                "notify": ("notify",), "retention": ("retention",),
                "alertbytes": ("alertbytes",), "modes": ("modes",)}


def _brief(value: Any, depth: int = 0) -> Any:
    """The headline numbers of a figure, for the progress line."""
    if not isinstance(value, dict):
        return round(value, 3) if isinstance(value, float) else value
    if depth >= 3:
        return "..."
    picked = {k: _brief(v, depth + 1) for k, v in value.items()
              if k in SUMMARY_KEYS or (isinstance(v, dict) and k not in ("runs", "per_process"))}
    return picked


def summary(fig: dict, step: str) -> str:
    """One line of what a step measured."""
    return str({k: _brief(fig[k]) for k in STEP_FIGURES.get(step, ()) if k in fig})

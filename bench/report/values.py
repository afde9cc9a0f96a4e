"""Every figure the prose of BENCHMARKS.md and README.md quotes, formatted, from one run's results."""

from __future__ import annotations


def _n(x: float, digits: int = 0) -> str:
    """A figure with thousands separators."""
    return f"{x:,.{digits}f}"


def _spread(values: list[float], digits: int = 0) -> str:
    """min-max of a run's rounds."""
    return f"{_n(min(values), digits)}-{_n(max(values), digits)}"


def _rps(runs: list[dict]) -> list[float]:
    return [r["rps"] for r in runs]


def _median_run(runs: list[dict]) -> dict:
    """The round whose rate is the median (the one the table's figure comes from)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def values(res: dict) -> dict[str, str]:
    """Every figure the prose quotes, formatted, from one run's results."""
    fig, m = res["figures"], res["machine"]
    post, poll, pc, pp = fig["post"], fig["poll"], fig["push_ceiling"], fig["push_project"]
    big, empty = _rps(post["big"]["runs"]), _rps(post["empty"]["runs"])
    batch_eps = fig["batch100"]["events_per_s"]
    idle, hist, hand = fig["idle_cpu"], fig["history_ms"], fig["hand_to_screen"]
    return {
        "reps": str(len(big)), "date": m["date"][:10], "nproc": str(m["nproc"]), "fsync_ms": _n(m["fsync_ms"], 1),
        "big_events": _n(res.get("events", 1_000_000)), "clients": _n(1000), "clients_half": "500",
        "post_big": _n(post["big"]["rps"]), "post_big_rounds": _spread(big), "post_seed": _n(post["seed"]["rps"]),
        "post_ceiling": _n(post["ceiling"]["rps"]), "post_dash": _n(fig["post_with_dashboard"]["rps"]),
        "ceiling_over_seed": _n(post["ceiling"]["rps"] / post["seed"]["rps"], 1),
        "big_over_empty": _n(post["big"]["rps"] / post["empty"]["rps"], 2),
        "big_over_empty_rounds": _spread([a / b for a, b in zip(big, empty, strict=True)], 2),
        "batch_eps": _n(batch_eps), "batch_rounds": _spread([r * 100 for r in _rps(fig["batch100"]["runs"])]),
        "batch_ms": _n(100_000 / batch_eps, 1),
        "poll_304": _n(poll["project_304"]["rps"]), "poll_ceiling": _n(poll["ceiling_get"]["rps"]),
        "poll_ratio": _n(poll["project_304"]["rps"] / poll["ceiling_get"]["rps"], 2),
        "poll_rounds": _spread([a / b for a, b in zip(_rps(poll["project_304"]["runs"]),
                                                        _rps(poll["ceiling_get"]["runs"]), strict=True)], 2),
        "pc_p50": _n(pc["one_client_p50_ms"], 1), "pc_p99": _n(pc["one_client_p99_ms"], 1),
        "pp_p50": _n(pp["one_client_p50_ms"], 1), "pp_p99": _n(pp["one_client_p99_ms"], 1),
        "pp_fan": _n(pp["fanout_last_median_ms"]), "pc_fan": _n(pc["fanout_last_median_ms"]),
        "fan_ratio": _n(pp["fanout_last_median_ms"] / pc["fanout_last_median_ms"], 2),
        "payload_kb": _n(res.get("payload_bytes", 0) / 1000),
        "push_what": ("a delta (`donnees_delta`: the totals and the changed dispenser) built and encoded"
                      if res.get("push_event") == "donnees_delta" else
                      f"a new {_n(res.get('payload_bytes', 0) / 1000)} KB payload encoded"),
        "hist_big": _n(hist["big"], 1), "hist_small": _n(hist["small"], 1),
        "hist_ratio": _n(hist["big"] / hist["small"], 2),
        "hand_p50": "not measured" if "error" in hand else _n(hand["p50_ms"]),
        "idle_disp": _n(idle["dispenser_pct"], 3), "idle_seed": _n(idle["seed_loop_pct"], 3),
        "idle_window": _n(idle["window_s"]), "idle_tick": _n(100 * 0.01 / idle["window_s"], 3),
        "pp_rss": _n(pp["rss_mb"]), "pc_rss": _n(pc["rss_mb"]), "rss_diff": _n(pp["rss_mb"] - pc["rss_mb"], 1),
        "push_note": "" if pp["one_client_p99_ms"] <= 1.5 * pc["one_client_p99_ms"] else
        " A ratio of 1.5x against a server that writes nothing is hard to reach with a durable write on the path.",
        **statuses(res["goals"]),
        **cluster_values(fig["cluster"], pc),
    }


# Which goal row (by its goal text, in table order) each bullet of the prose reports on.
STATUS_OF = {"post_status": (">= 1.5x seed", ">= 0.5x ceiling"), "empty_status": (">= 0.9x own rate",),
             "batch_status": (">= 40,000/s",), "poll_status": (">= 0.8x ceiling",),
             "push_status": ("<= 1.5x ceiling",), "fan_status": ("<= 1.3x ceiling",),
             "rss_status": ("<= ceiling + 30 MB",), "hist_status": ("<= 2x the 10k query",),
             "hand_status": (">= 20x sooner",), "idle_status": ("<= 0.5 %",)}


def statuses(rows: list[dict]) -> dict[str, str]:
    """For each prose bullet: "met" or "not met" from the first goal rows of the table it reports on."""
    out = {}
    for key, goals_of in STATUS_OF.items():
        found = [next((r["met"] for r in rows if r["goal"].startswith(g)), None) for g in goals_of]
        words = ["met" if m else "not met" for m in found]
        out[key] = "**" + (words[0] if len(set(words)) == 1 else " / ".join(words)) + "**"
    return out


def cluster_values(cl: dict, pc: dict) -> dict[str, str]:
    """The cluster step's figures, formatted (empty when it was not measured)."""
    if "error" in cl:
        return {"cl_error": cl["error"]}
    post, batch, push = cl["post"], cl["batch100"], cl["push"]
    pair, one = _median_run(post["pair"]["runs"]), _median_run(post["one"]["runs"])
    pair_cpu = sum(pair["server_cpu_pct"]) / len(pair["server_cpu_pct"])
    pair_each = pair["rps"] / len(pair["per_process"])
    return {
        "cl_events": _n(cl["store_events"]), "cl_post_busy": _n(pair["machine_busy_pct"]),
        "cl_pair_cpu": _n(pair_cpu), "cl_pair_rps_each": _n(pair_each), "cl_pair_ms": _n(10 * pair_cpu / pair_each, 1),
        "cl_one_cpu": _n(one["server_cpu_pct"][0]), "cl_one_ms": _n(10 * one["server_cpu_pct"][0] / one["rps"], 1),
        "cl_pair_rps": _n(post["pair"]["rps"]), "cl_one_rps": _n(post["one"]["rps"]),
        "cl_post_ratio": _n(post["pair"]["rps"] / post["one"]["rps"], 2),
        "cl_batch_busy": _n(_median_run(batch["pair"]["runs"])["machine_busy_pct"]),
        "cl_batch_one_busy": _n(_median_run(batch["one"]["runs"])["machine_busy_pct"]),
        "cl_batch_pair": _n(batch["pair"]["events_per_s"]), "cl_batch_one": _n(batch["one"]["events_per_s"]),
        "cl_batch_ratio": _n(batch["pair"]["events_per_s"] / batch["one"]["events_per_s"], 2),
        "cl_p99": _n(push["one_client_p99_ms"], 1), "cl_p50": _n(push["one_client_p50_ms"], 1),
        "cl_p99_ratio": _n(push["one_client_p99_ms"] / pc["one_client_p99_ms"], 1),
        "cl_fan": _n(push["fanout_last_median_ms"]),
        "cl_fan_ratio": _n(push["fanout_last_median_ms"] / pc["fanout_last_median_ms"], 2),
        "cl_p99_status": "met" if push["one_client_p99_ms"] <= 1.5 * pc["one_client_p99_ms"] else "not met",
        "cl_fan_status": "met" if push["fanout_last_median_ms"] <= 1.3 * pc["fanout_last_median_ms"] else "not met",
    }

"""The fleet step's table (10,000 dispensers against 10) and its rows in the goals table, from results.json."""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024


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
    out = []
    for key, how, ratio in (("post_headless", "wrk, 8 connections, nobody listening", 0.9),
                            ("post_sequential", "one client, each POST after the last answer, nobody listening", 0.9)):
        if key in f:  # runs before these were measured have only the one with dashboards
            p = f[key]
            out.append(Line(f"Single-event POSTs/s ({how}; uuid4 ids, every dispenser in turn)",
                            f"{p['small']['rps']:.0f}/s", f"{p['big']['rps']:.0f}/s", f">= {ratio:g}x {s} dispensers",
                            p["big"]["rps"] / p["small"]["rps"], ratio, ">="))
    out.append(Line(f"Single-event POSTs/s (wrk, 8 connections), {f['dashboards']} dashboards joined to the fleet",
                    f"{post['small']['rps']:.0f}/s", f"{post['big']['rps']:.0f}/s", f">= 0.8x {s} dispensers",
                    post["big"]["rps"] / post["small"]["rps"], 0.8, ">="))
    if "start_s" in f:
        st = f["start_s"]
        out.append(Line("Server start (a fresh `python -m app` until /healthz answers 200)", f"{st['small']:.2f} s",
                        f"{st['big']:.2f} s", "<= 3 s", st["big"], 3.0, "<="))
    out += [
        Line(f"Bytes received by the page (`/`) per use, websocket frames + polls, {f['desk_uses_per_s']:g} uses/s "
             f"for {f['window_s']:g} s, first load aside", _bytes(ps), _bytes(pb), "<= 2 KiB",
             pb["bytes_per_use"], 2 * KIB, "<="),
        Line(f"Desktop dashboard's first figures in Chromium (navigation start -> totals written in the frame that "
             f"paints them), median of {len(pb['first_samples_ms'])} cold loads", f"{ps['first_figures_ms']:.0f} ms",
             f"{pb['first_figures_ms']:.0f} ms", "<= 1.5 s", pb["first_figures_ms"], 1500, "<="),
    ]
    if "kiosk_first_figures_ms" in pb:
        first = (ps["kiosk_first_figures_ms"], pb["kiosk_first_figures_ms"])
        out.append(Line("Kiosk's first figures (`/?kiosk=1`, 1920x1080, cold)", f"{first[0]:.0f} ms",
                        f"{first[1]:.0f} ms", "<= 1 s", first[1], 1000, "<="))
    out.append(Line(f"Longest main-thread task on the kiosk (`/?kiosk=1`, 1920x1080) while {f['kiosk_uses_per_s']:g} "
                    f"uses/s arrive for {f['window_s']:g} s", _tasks(ps), _tasks(pb), "no task over 50 ms",
                    pb["kiosk_longest_ms"], 50, "<="))
    if "round_ready_ms" in pb:
        whole = len(pb["round_whole_fleet_gets"])
        out.append(Line(f"One ward's refill round on a phone (`/tournee?group=`, 390x844, cold: navigation start -> "
                        f"its list shown), median of {len(pb['round_samples_ms'])}; GETs of the whole fleet: {whole}",
                        f"{ps['round_ready_ms']:.0f} ms", f"{pb['round_ready_ms']:.0f} ms", "<= 0.5 s",
                        pb["round_ready_ms"], 500, "<="))
    limit = 80 if f["dispensers"]["big"] > 1000 else 20
    out.append(Line("Server RSS after the load (/proc VmRSS)", f"{rss['small']:.0f} MB", f"{rss['big']:.0f} MB",
                    f"<= {s} dispensers + {limit} MB", rss["big"] - rss["small"], limit, "<="))
    return out


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
    """The goals table's rows (bench/report/rows.py, BUILDERS): the big fleet's value, the small one's in brackets."""
    f = fig["fleet"]
    if "error" in f:
        return [("Fleet: 10,000 dispensers, 20 dashboards", f"not measured: {f['error']}", "", None, 0, "<=")]
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
           f"both servers running side by side ({f.get('per_ward', 10)} dispensers a ward), {f['dashboards']} "
           f"dashboards joined to each for the POSTs marked so and the pages.{took}", "",
           f"| Figure | {s} dispensers | {g:,} dispensers | Goal | Ratio / value | Met |", "|---|---|---|---|---|---|"]
    for x in lines(f):
        met = x.measured is not None and (x.measured >= x.limit if x.op == ">=" else x.measured <= x.limit)
        out.append(f"| {x.figure} | {x.small} | {x.big} | {x.goal} | {round(x.measured, 3):g} | "
                   f"{'met' if met else '**not met**'} |")
    return "\n".join(out)


def readme(res: dict) -> str:
    """README's scale figures: what the big fleet costs against the small one, from the last fleet step."""
    f = res["figures"]["fleet"]
    if "error" in f:
        return f"The fleet step was not measured in the last `make bench`: {f['error']}."
    s, g, pb = f["dispensers"]["small"], f["dispensers"]["big"], f["page"]["big"]
    ratio = lambda key: f[key]["big"]["rps"] / f[key]["small"]["rps"]  # noqa: E731
    parts = [f"Measured {f.get('date', res['machine']['date'])[:10]} on {res['machine']['nproc']} cores, {g:,} "
             f"dispensers against {s}:", ""]
    if "post_headless" in f:
        parts.append(f"* single-event POSTs, nobody listening: {f['post_headless']['big']['rps']:,.0f}/s with 8 "
                     f"connections ({ratio('post_headless'):.2f}x the rate at {s}), "
                     f"{f['post_sequential']['big']['rps']:,.0f}/s from one client ({ratio('post_sequential'):.2f}x);")
    parts.append(f"* with {f['dashboards']} dashboards joined to the whole fleet: {f['post']['big']['rps']:,.0f}/s "
                 f"({ratio('post'):.2f}x);")
    if "start_s" in f:
        parts.append(f"* a fresh server starts in {f['start_s']['big']:.1f} s and holds "
                     f"{f['rss_mb']['big']:.0f} MB ({f['rss_mb']['big'] - f['rss_mb']['small']:+.0f} MB against {s});")
    parts.append(f"* the desktop dashboard's first figures in {pb['first_figures_ms'] / 1000:.2f} s, the kiosk's in "
                 f"{pb.get('kiosk_first_figures_ms', float('nan')) / 1000:.2f} s, its longest task while 20 uses a "
                 f"second arrive {pb['kiosk_longest_ms']:.0f} ms"
                 + (f"; one ward's refill round on a phone in {pb['round_ready_ms'] / 1000:.2f} s." if "round_ready_ms"
                    in pb else "."))
    return "\n".join(parts)

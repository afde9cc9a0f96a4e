"""From bench/results.json to the goals table and every figure quoted in BENCHMARKS.md and README.md.

Reads results.json only: no step module is imported here (import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.context import RESULTS, ROOT, WORK
from bench.report import fleet, modes
from bench.report.rows import goals
from bench.report.values import values

PROSE = Path(__file__).resolve().parent / "prose"


def render(name: str, vals: dict[str, str]) -> str:
    """A prose template of bench/report/prose/ filled with one run's figures."""
    return (PROSE / name).read_text(encoding="utf-8").format_map(vals).rstrip("\n")


def replace_between(path: Path, marker: str, text: str) -> None:
    """Rewrite what lies between `<!-- marker:start -->` and `<!-- marker:end -->` in `path`, nothing else."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    content = path.read_text(encoding="utf-8")
    if start not in content or end not in content:
        raise RuntimeError(f"{path.name} lacks the markers {start} ... {end}")
    head, _, rest = content.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")


def table(res: dict) -> str:
    """The run line and the goals table."""
    m = res["machine"]
    cluster_s = res.get("step_s", {}).get("cluster", 0)
    lines = [
        f"Run {m['date']} of commit {m.get('source', 'unknown')} on {m['nproc']} cores, {m['cpu']}, Linux "
        f"{m['kernel']} (load average at start "
        f"{m['loadavg_at_start']:.1f}; 4 KiB write + fsync {m['fsync_ms']:.1f} ms); Python {m['python']}, Flask "
        f"{m['flask']}, Flask-SocketIO {m['flask_socketio']}, eventlet {m['eventlet']}, SQLAlchemy {m['sqlalchemy']}, "
        f"SQLite {m['sqlite']}. Whole run: {res['total_s']:.0f} s of a 600 s budget (prefill of "
        f"{res['events']:,} events: {res['prefill_s'].get('big', 0):.0f} s; cluster step: {cluster_s:.0f} s, its "
        f"PostgreSQL prefill {res['figures']['cluster'].get('prefill_s', 0):.0f} s). GET payload: "
        f"{res.get('payload_bytes', 0) / 1000:.0f} KB (100 dispensers); what a dashboard receives per use: "
        f"`{res.get('push_event', '?')}`, and the ceiling pushes the same.",
        "",
        "| Figure | Measured | Goal | Ratio / value | Met |",
        "|---|---|---|---|---|",
    ]
    for g in res["goals"]:
        measured = "-" if g["measured"] is None else f"{g['measured']:g}"
        lines.append(f"| {g['figure']} | {g['value']} | {g['goal']} | {measured} | "
                     f"{'met' if g['met'] else '**not met**'} |")
    return "\n".join(lines)


def write_docs(res: dict) -> None:
    """The table and the prose figures in BENCHMARKS.md, the scaling-out figures in README.md."""
    vals = values(res)
    if "cl_error" in vals:
        vals["cluster"] = f"* **2 processes on PostgreSQL + Redis**: not measured in this run ({vals['cl_error']})."
        readme = (f"The two-process figures (PostgreSQL + Redis) were not measured by the last `make bench` "
                  f"({vals['date']}: {vals['cl_error']}).")
    else:
        vals["cluster"] = render("limits-cluster.md", vals)
        readme = render("readme.md", vals)
    replace_between(ROOT / "BENCHMARKS.md", "results", table(res))
    if "fleet" in res["figures"]:
        replace_between(ROOT / "BENCHMARKS.md", "fleet", fleet.table(res))
        replace_between(ROOT / "README.md", "bench:fleet", fleet.readme(res))
    if "modes" in res["figures"]:
        replace_between(ROOT / "BENCHMARKS.md", "modes", modes.table(res))
    replace_between(ROOT / "BENCHMARKS.md", "limits", render("limits.md", vals))
    replace_between(ROOT / "README.md", "bench:scale-out", readme)


def render_results(results: Path = RESULTS) -> None:
    """Rewrite the generated parts of the docs from a results file (what a full `make bench` does at its end)."""
    write_docs(json.loads(results.read_text(encoding="utf-8")))


def merge(partial: Path = WORK / "partial.json", results: Path = RESULTS) -> None:
    """Put the fleet figures of an `--only fleet` run into results.json, its goals and the docs (dated apart)."""
    part, res = json.loads(partial.read_text(encoding="utf-8")), json.loads(results.read_text(encoding="utf-8"))
    res["figures"]["fleet"] = part["figures"]["fleet"]
    res.setdefault("step_s", {})["fleet"] = part["step_s"]["fleet"]
    res["goals"] = goals(res["figures"])
    results.write_text(json.dumps(res, indent=2), encoding="utf-8")
    write_docs(res)

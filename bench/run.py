"""`make bench` (`python -m bench.run`): every figure against references started in the same run.

A full run writes bench/results.json, then bench/report/ renders the generated parts of BENCHMARKS.md and
README.md from it. `--only STEP,...` runs some steps (and what they need) for development and writes
bench/work/partial.json only. Any answer the project got wrong during a measurement (bench.context.Fault) fails the
run and writes no figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import alertbytes, fleet, modes, notify, retention, steps
from bench.context import RESULTS, RUN, WORK, Bench, Fault, Unavailable, log_t0, say
from bench.machine import machine
from bench.prefill import prefill
from bench.report.docs import render_results
from bench.report.rows import goals
from bench.report.summary import summary

BIG_EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "60"))
BUDGET_S = 600


@dataclass(frozen=True)
class Step:
    """One step: what it runs, the servers it uses, and what it records when its environment fails."""

    name: str
    run: Callable[[Bench], None]
    needs: tuple[str, ...] = ()
    # Steps that need something outside the project (Chromium; PostgreSQL and Redis): when it is missing
    # (Unavailable), "not measured" is recorded (figure key, value). Any other error fails the run.
    missing: Callable[[str], tuple[str, Any]] | None = None


# In run order. A new step is a function of Bench in its own module, a line here, its figure keys in
# bench/report/summary.py (STEP_FIGURES) and its goal rows in bench/report/rows.py (BUILDERS).
STEPS = [
    Step("idle", lambda b: steps.idle(b, IDLE_S), ("empty",)),
    Step("history", steps.history, ("big", "small")),
    Step("post", steps.post, ("seed", "ceiling", "empty", "big")),
    Step("batch", steps.batch, ("big",)),
    Step("poll", steps.poll, ("ceiling", "big")),
    Step("push", steps.push, ("ceiling", "big")),
    Step("hand", steps.hand, ("big",), lambda err: ("hand_to_screen", steps.hand_missing(err))),
    Step("fleet", fleet.step, (), lambda err: ("fleet", {"error": err})),
    Step("cluster", steps.cluster_step, (), lambda err: ("cluster", {"error": err})),
    Step("notify", notify.step, (), lambda err: ("notify", {"error": err})),
    Step("retention", retention.step),
    Step("alertbytes", alertbytes.step),
    Step("modes", modes.step, (), lambda err: ("modes", {"error": err})),
]


def run_step(b: Bench, step: Step) -> None:
    """Run one step; a missing environment (Unavailable) is recorded when the step allows it."""
    t0 = time.monotonic()
    try:
        step.run(b)
    except Unavailable as exc:
        if step.missing is None:
            raise
        key, value = step.missing(" ".join(str(exc).replace("|", "/").split())[:200])
        b.fig[key] = value
    b.res.setdefault("step_s", {})[step.name] = time.monotonic() - t0
    say(f"{step.name}: {summary(b.fig, step.name)}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """--only STEP[,STEP...] and --events N."""
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--only", type=lambda s: [x for x in s.split(",") if x], default=[],
                    help="comma-separated steps: " + ",".join(s.name for s in STEPS))
    ap.add_argument("--events", type=int, default=BIG_EVENTS, help="events in the big store (env BENCH_EVENTS)")
    args = ap.parse_args(argv)
    unknown = set(args.only) - {s.name for s in STEPS}
    if unknown:
        ap.error(f"unknown step(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the steps; a full run writes bench/results.json and the generated parts of the docs."""
    args = parse(argv)
    selected = [s for s in STEPS if not args.only or s.name in args.only]
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    b = Bench(args.events, machine(), prefill, steps.ceiling)
    try:
        for i, step in enumerate(selected):
            run_step(b, step)
            b.release({n for later in selected[i + 1:] for n in later.needs})
    except Exception as exc:
        what = "the project answered wrongly during a measurement" if isinstance(exc, Fault) else "error"
        say(f"FAILED ({what}): {type(exc).__name__}: {exc}")
        if not isinstance(exc, Fault):
            traceback.print_exc()
        failed = {**b.res, "failed": f"{type(exc).__name__}: {exc}"}
        (WORK / "failed.json").write_text(json.dumps(failed, indent=2, default=str), encoding="utf-8")
        return 1
    finally:
        b.close()
    b.res["total_s"] = time.monotonic() - log_t0
    b.res["goals"] = goals(b.fig)
    out = WORK / "partial.json" if args.only else RESULTS
    out.write_text(json.dumps(b.res, indent=2), encoding="utf-8")
    if not args.only:
        render_results(out)  # the docs from what was written, as `python -m bench.report` would
    for g in b.res["goals"]:
        say(f"{'met    ' if g['met'] else 'NOT MET'} {g['goal']:<24} {g['measured']}  {g['figure'][:60]}")
    say(f"done in {b.res['total_s']:.0f}s (budget {BUDGET_S}s), results in {out}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())

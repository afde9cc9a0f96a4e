"""`make bench` (`python -m bench.run`): every figure against references started in the same run.

A full run writes bench/results.json and the generated parts of BENCHMARKS.md and README.md. `--only STEP,...`
runs some steps (and what they need) for development and writes bench/work/partial.json only. Any answer the
project got wrong during a measurement (bench.common.Fault) fails the run and writes no figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests

from bench import fleet, notify, report, sockbench, steps
from bench.common import BENCH, ROOT, RUN, WORK, Fault, RefServer, Unavailable, median, now_iso, token, write_config
from bench.prefill import prefill
from devkit.servers import ServerProcess

BIG_EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
SMALL_EVENTS = 10_000
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "60"))
BUDGET_S = 600
log_t0 = time.monotonic()


def say(msg: str) -> None:
    """Progress on stderr with the elapsed time."""
    print(f"[{time.monotonic() - log_t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def fsync_ms(directory: Path, n: int = 30) -> float:
    """Median time of a 4 KiB write + fsync in `directory`: the floor under every durable commit on this disk."""
    times = []
    with tempfile.NamedTemporaryFile(dir=directory) as f:
        for _ in range(n):
            t = time.perf_counter()
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
            times.append(time.perf_counter() - t)
    return median(times) * 1000


def source() -> str:
    """The commit measured (env BENCH_COMMIT for a copy of the tree), marked when the code differs from it."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    code = ["app", "bench", ":!bench/results.json", "gel_dispenser", "dispenser.py", "gel_toolkit.py"]
    try:
        commit, dirty = (subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True).stdout.strip()
                         for argv in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--", *code]))
    except OSError:
        return "unknown"
    return f"{commit or 'unknown'}{' with uncommitted changes' if dirty else ''}"


def machine() -> dict[str, Any]:
    """nproc, CPU model, kernel, the versions that matter and the disk's fsync time."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {
        "date": now_iso(), "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "python": platform.python_version(), "flask": version("flask"), "flask_socketio": version("flask-socketio"),
        "eventlet": version("eventlet"), "sqlalchemy": version("sqlalchemy"), "sqlite": __import__("sqlite3")
        .sqlite_version, "loadavg_at_start": os.getloadavg()[0], "fsync_ms": fsync_ms(RUN), "source": source(),
    }


class Bench:
    """What the steps share: the stores (filled on first use), the servers (started on first use), the figures."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.say = say
        self.fig: dict[str, Any] = {}
        self.res: dict[str, Any] = {"machine": machine(), "events": events, "figures": self.fig, "prefill_s": {}}
        self.configs: dict[str, Path] = {}
        self.running: dict[str, ServerProcess | RefServer] = {}
        self.closers: list[Callable[[], object]] = []

    def store(self, name: str) -> Path:
        """The config of store `name` (empty, small, big), filled on first use."""
        if name not in self.configs:
            cfg = write_config(RUN / name, "usage.db")
            n = {"empty": 0, "small": SMALL_EVENTS, "big": self.events}[name]
            if n:
                self.res["prefill_s"][name] = prefill(cfg, n)
                say(f"prefilled {n} events ({name}) in {self.res['prefill_s'][name]:.1f}s")
            self.configs[name] = cfg
        return self.configs[name]

    def server(self, name: str) -> Any:
        """Server `name` (a store's name, "seed" or "ceiling"), started on first use."""
        if name not in self.running:
            if name == "seed":
                srv: Any = RefServer("ref_seed.py")
            elif name == "ceiling":
                srv = self._ceiling()
            else:
                srv = ServerProcess(self.store(name))
            self.running[name] = srv  # registered first, so that a failed start is still stopped
            srv.start()
        return self.running[name]

    def _ceiling(self) -> RefServer:
        """The ceiling, pushing what the project pushes per use (full figures or a delta) in the same shape."""
        big = self.server("big").url
        answer = requests.get(big + steps.GET, timeout=30)
        answer.raise_for_status()
        (RUN / "payload.json").write_bytes(answer.content)
        self.res["payload_bytes"] = len(answer.content)
        event = sockbench.pushed_event(big, token(0))
        self.res["push_event"] = event
        return RefServer("ref_ceiling.py", "--payload", str(RUN / "payload.json"),
                         "--push", "delta" if event == "donnees_delta" else "full")

    def on_close(self, closer: Callable[[], object]) -> None:
        """Call `closer` when the run ends, however it ends."""
        self.closers.append(closer)

    def release(self, keep: set[str]) -> None:
        """Stop the servers no later step needs."""
        for name in [n for n in self.running if n not in keep]:
            self.running.pop(name).stop()

    def close(self) -> None:
        """Stop everything still running."""
        for closer in self.closers:
            closer()
        self.release(set())


@dataclass(frozen=True)
class Step:
    """One step: what it runs, the servers it uses, and what it records when its environment fails."""

    name: str
    run: Callable[[Bench], None]
    needs: tuple[str, ...] = ()
    # Steps that need something outside the project (Chromium; PostgreSQL and Redis): when it is missing
    # (Unavailable), "not measured" is recorded (figure key, value). Any other error fails the run.
    missing: Callable[[str], tuple[str, Any]] | None = None


# In run order. A new step (issue 12's `fleet`, say) is a function of Bench in its own module, a line here, its
# figure keys in report.STEP_FIGURES and its goal rows in report_rows.BUILDERS.
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
    say(f"{step.name}: {report.summary(b.fig, step.name)}")


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
    b = Bench(args.events)
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
    b.res["goals"] = report.goals(b.fig)
    out = WORK / "partial.json" if args.only else BENCH / "results.json"
    out.write_text(json.dumps(b.res, indent=2), encoding="utf-8")
    if not args.only:
        report.write_docs(b.res)
    for g in b.res["goals"]:
        say(f"{'met    ' if g['met'] else 'NOT MET'} {g['goal']:<24} {g['measured']}  {g['figure'][:60]}")
    say(f"done in {b.res['total_s']:.0f}s (budget {BUDGET_S}s), results in {out}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())

"""Idle CPU: the event-driven dispenser (`dispenser.py --simulate`, no hands) beside the seed's 100 ms polling loop."""

from __future__ import annotations

import signal
import subprocess
import time

from bench.common import cpu_seconds
from bench.context import BENCH, PY, ROOT, RUN, token


class IdleCpu:
    """Both processes, and the CPU each uses over a window."""

    def __init__(self, server_url: str):
        cfg = RUN / "idle-dispenser.toml"
        cfg.write_text(
            "[dispenser]\n" + f'id = "d001"\nserver_url = "{server_url}"\ntoken = "{token(1)}"\n'
            + f'sensor_pin = 17\nservo_pin = 18\ndose_ml = 1.5\nspool = "{RUN / "spool-idle.db"}"\n'
            + 'simulate_mean_interval_s = 1e9\nlog_level = "WARNING"\n', encoding="utf-8")
        self.procs: dict[str, subprocess.Popen] = {}
        with (RUN / "idle.log").open("ab") as logf:
            for name, argv in (("dispenser", [PY, str(ROOT / "dispenser.py"), "--simulate", "--config", str(cfg)]),
                               ("seed_loop", [PY, str(BENCH / "seed_poll.py")])):
                self.procs[name] = subprocess.Popen(argv, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT)
        self.t0 = 0.0
        self.cpu0: dict[str, float] = {}

    def started(self) -> bool:
        """True once both have used some CPU (imported their modules)."""
        return all(cpu_seconds(p.pid) > 0.05 for p in self.procs.values())

    def begin(self) -> None:
        """Start the window (after imports and start-up are over)."""
        self.t0 = time.monotonic()
        self.cpu0 = {k: cpu_seconds(p.pid) for k, p in self.procs.items()}

    def end(self) -> dict[str, float]:
        """CPU % of one core over the window, per process; then stop them."""
        span = time.monotonic() - self.t0
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode} during the idle window: see {RUN / 'idle.log'}")
        out = {f"{k}_pct": 100 * (cpu_seconds(p.pid) - self.cpu0[k]) / span for k, p in self.procs.items()}
        out["window_s"] = span
        self.stop()
        return out

    def stop(self) -> None:
        """SIGTERM both (idempotent), SIGKILL what does not exit."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

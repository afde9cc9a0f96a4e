"""What every step of `make bench` shares: the paths, the bench tokens and configs, the reference servers, and
`Bench`, the run's context (its stores, its running servers, its figures).

The bottom of bench/: it imports no other bench module (import-linter contract in pyproject.toml). How a store is
filled and how the ceiling starts are given to `Bench` by bench/run.py, which knows the steps.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devkit.servers import ServerProcess, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / "work"
RUN = WORK / "run"  # everything one run creates; wiped when the next one starts
RESULTS = BENCH / "results.json"
PY = sys.executable
ADMIN = "admin-token-bench-0000"
N_DISPENSERS = 100
POST = "/mettre_a_jour_donnees"
GET = "/obtenir_donnees_utilisation"
SMALL_EVENTS = 10_000
log_t0 = time.monotonic()


class Fault(Exception):
    """The project answered wrongly during a measurement: the run fails and writes no figures."""


class Unavailable(RuntimeError):
    """Something outside the project that a step needs (Chromium, PostgreSQL, Redis) is missing on this machine."""


def say(msg: str) -> None:
    """Progress on stderr with the elapsed time."""
    print(f"[{time.monotonic() - log_t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def token(i: int) -> str:
    """The bench token of dispenser i."""
    return f"tok-d{i:03d}-bench-token"


def write_config(directory: Path, db_name: str, log_level: str = "INFO", n: int = N_DISPENSERS, *,
                 database: str | None = None, message_queue: str | None = None, timezone: str | None = None,
                 async_mode: str = "eventlet") -> Path:
    """A config.toml with `n` dispensers d000.. and a SQLite file in `directory` (or `database`, a URL)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["[server]", f'database = "{database or "sqlite:///" + db_name}"', f'async_mode = "{async_mode}"',
             f'admin_token = "{ADMIN}"', f'log_level = "{log_level}"']
    if message_queue:
        lines.append(f'message_queue = "{message_queue}"')
    if timezone:
        lines.append(f'timezone = "{timezone}"')
    for i in range(n):
        lines += ["", "[[server.dispensers]]", f'id = "d{i:03d}"', f'name = "Distributeur {i}"',
                  "capacity_ml = 1000000", f'token = "{token(i)}"']
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class RefServer:
    """A reference server script (bench/ref_*.py) as a child process."""

    def __init__(self, script: str, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = WORK / f"{Path(script).stem}-{self.port}.log"
        self.argv = [PY, str(BENCH / script), "--port", str(self.port), *args]
        self.proc: subprocess.Popen | None = None

    def start(self) -> RefServer:
        """Start and wait until the port accepts connections."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port), 20, message=self.argv[1])
        return self

    def stop(self) -> None:
        """Terminate and reap."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Bench:
    """What the steps share: the stores (filled on first use), the servers (started on first use), the figures.

    fill(config, n) puts n events in a store and returns its seconds; ceiling(bench) makes the ceiling server.
    """

    def __init__(self, events: int, machine: dict[str, Any], fill: Callable[[Path, int], float],
                 ceiling: Callable[[Bench], RefServer]) -> None:
        self.events = events
        self.say = say
        self.fill, self.ceiling = fill, ceiling
        self.fig: dict[str, Any] = {}
        self.res: dict[str, Any] = {"machine": machine, "events": events, "figures": self.fig, "prefill_s": {}}
        self.configs: dict[str, Path] = {}
        self.running: dict[str, ServerProcess | RefServer] = {}
        self.closers: list[Callable[[], object]] = []

    def store(self, name: str) -> Path:
        """The config of store `name` (empty, small, big), filled on first use."""
        if name not in self.configs:
            cfg = write_config(RUN / name, "usage.db")
            n = {"empty": 0, "small": SMALL_EVENTS, "big": self.events}[name]
            if n:
                self.res["prefill_s"][name] = self.fill(cfg, n)
                say(f"prefilled {n} events ({name}) in {self.res['prefill_s'][name]:.1f}s")
            self.configs[name] = cfg
        return self.configs[name]

    def server(self, name: str) -> Any:
        """Server `name` (a store's name, "seed" or "ceiling"), started on first use."""
        if name not in self.running:
            if name == "seed":
                srv: Any = RefServer("ref_seed.py")
            elif name == "ceiling":
                srv = self.ceiling(self)
            else:
                srv = ServerProcess(self.store(name))
            self.running[name] = srv  # registered first, so that a failed start is still stopped
            srv.start()
        return self.running[name]

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

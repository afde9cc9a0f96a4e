"""The machine and the code a run measured: cores, CPU, kernel, versions, the disk's fsync time, the commit."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.common import median, now_iso
from bench.context import ROOT, RUN


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

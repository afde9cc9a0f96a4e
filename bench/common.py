"""Measuring tools of the benchmarks: wrk with answer checks, /proc readings, medians, event ids."""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from random import Random

import requests

from bench.context import BENCH, Fault


def uuid4_ids(rng: Random, n: int) -> list[str]:
    """`n` uuid4 strings like a dispenser's event ids (random, so inserts land all over the unique index)."""
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def pid_of(server: object) -> int:
    """The pid of a ServerProcess or RefServer."""
    return server.proc.pid  # type: ignore[attr-defined]


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` and its child processes in MB, from /proc (a gunicorn server is two)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024 + sum(rss_mb(child) for child in children(pid))
    raise RuntimeError("no VmRSS")


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux: /proc/PID/task/TID/children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile (a threaded server has thousands)
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` in seconds, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: str = "get.lua", args: tuple[str, ...] = ("200",), duration: int = 4,
        connections: int = 8, headers: tuple[str, ...] = ()) -> dict:
    """Run Debian wrk (1 thread); requests/s, socket errors, p99. Raise Fault on any unexpected answer.

    The Lua scripts count every status other than the one expected (wrk itself counts only >= 400, so a fast
    redirect or a 304 where a 200 was due would pass), and wrk's own non-2xx/3xx count is checked too: a rate
    made partly of errors flatters the server.
    """
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers:
        argv += ["-H", h]
    argv += ["-s", str(BENCH / script), url, "--", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    checked = re.search(r"Unexpected statuses: (\d+) of (\d+)(?: \(first: (\d+)\))?", out)
    if rate is None or checked is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {out[-500:]} {done.stderr[-500:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    unexpected, answered = int(checked.group(1)), int(checked.group(2))
    if not answered:
        raise Fault(f"{url}: no answer in {duration} s ({out.strip().splitlines()[-4:]})")
    if unexpected or bad:
        raise Fault(f"{url}: {unexpected} of {answered} answers were not the expected status (first: "
                    f"{checked.group(3)}); wrk's non-2xx/3xx count: {bad.group(1) if bad else 0}")
    errs = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {
        "rps": float(rate.group(1)),
        "answers_checked": answered,
        "socket_errors": sum(int(g) for g in errs.groups()) if errs else 0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
    }


def median(values: list[float]) -> float:
    """statistics.median, tolerant of one value."""
    return statistics.median(values)


def now_iso() -> str:
    """UTC now, ISO 8601."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def use_each(url: str, tokens: list[str]) -> None:
    """One use per dispenser of these tokens, 8 at a time: a fleet in service, not one of dispensers never seen."""

    def one(tok: str) -> None:
        resp = requests.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                             headers={"Authorization": f"Bearer {tok}"}, timeout=30)
        if resp.status_code != 200:
            raise Fault(f"a first use: {resp.status_code} {resp.text[:200]}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, tokens))

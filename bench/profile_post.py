"""Where a single-event POST's time goes at 10 and at 10,000 dispensers: cProfile inside both servers, compared.

`python -m bench.profile_post [--dashboards 20] [--posts 1500]`: two fresh servers (tools/fleet_layout.py, wards
of 20) each run `python -m app` under cProfile (this module's `serve` mode); sequential POSTs from one client,
interleaved; then the functions whose time or call count grows with the fleet, per POST. A function called as
often at both sizes is on the POST path; one called far more often at 10,000 (the watchdog's check of every
entry every `check_interval_s`) is periodic work that steals from the POSTs. Not a bench step: a diagnosis.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import cluster
from devkit.servers import free_port, wait_for
from tools.fleet_layout import write_fleet

SIZES = (10, 10_000)
DISTINCT = 200  # dispensers posted to in turn: each seen before the profile starts, so no first contact counts


def serve() -> None:
    """`python -m app` under cProfile: SIGUSR1 starts a fresh profile, SIGUSR2 writes it to $PROFILE_OUT."""
    profile = cProfile.Profile()

    def restart(*_: object) -> None:
        nonlocal profile
        profile.disable()
        profile = cProfile.Profile()
        profile.enable()

    def dump(*_: object) -> None:
        profile.disable()
        profile.dump_stats(os.environ["PROFILE_OUT"])

    signal.signal(signal.SIGUSR1, restart)
    signal.signal(signal.SIGUSR2, dump)
    sys.argv = ["app", *sys.argv[2:]]
    profile.enable()
    runpy.run_module("app", run_name="__main__", alter_sys=True)


def _post_rate(session: requests.Session, url: str, tokens: list[str], count: int) -> float:
    """Sequential single-event POSTs/s over `tokens` in turn."""
    start = time.perf_counter()
    for k in range(count):
        answer = session.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                              headers={"Authorization": f"Bearer {tokens[k % len(tokens)]}"}, timeout=10)
        answer.raise_for_status()
    return count / (time.perf_counter() - start)


def _grown(small: Path, big: Path, posts: int, top: int) -> list[str]:
    """The functions whose own time at the big size exceeds the small one's most, per POST, with call counts."""
    a, b = pstats.Stats(str(small)).stats, pstats.Stats(str(big)).stats  # type: ignore[attr-defined]
    rows = []
    for func, (_, calls, own, cum, _) in b.items():
        _, calls_a, own_a, cum_a, _ = a.get(func, (0, 0, 0.0, 0.0, {}))
        name = f"{Path(func[0]).name}:{func[1]}:{func[2]}"
        rows.append(((own - own_a) / posts * 1e3, (cum - cum_a) / posts * 1e3, calls, calls_a, name))
    rows.sort(reverse=True)
    return [f"{own:+7.3f} ms own {cum:+7.3f} ms cum  calls {n:>7} vs {n_a:>7}  {name}"
            for own, cum, n, n_a, name in rows[:top]]


def main() -> None:
    """Profile both sizes and print the POST rates and the functions that grow with the fleet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboards", type=int, default=0, help="raw Socket.IO dashboards joined to each fleet")
    parser.add_argument("--posts", type=int, default=1500, help="POSTs per size, in 3 interleaved rounds")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="profile-post-"))
    procs: dict[int, tuple[subprocess.Popen, str, list[str]]] = {}
    try:
        for n in SIZES:
            config, tokens = write_fleet(work / f"fleet-{n}", n, {"database": "sqlite:///usage.db",
                                                                   "async_mode": "eventlet"}, per_ward=20)
            port = free_port()
            env = dict(os.environ, PROFILE_OUT=str(work / f"{n}.prof"))
            with (work / f"server-{n}.log").open("ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "bench.profile_post", "serve", "--config", str(config),
                                         "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            procs[n] = (proc, url, list(tokens.values())[:DISTINCT])
            wait_for(lambda u=url: requests.get(u + "/healthz", timeout=1).ok, 60)
        urls = [url for _, url, _ in procs.values() for _ in range(args.dashboards)]
        with requests.Session() as session, (cluster.dashboards(urls) if urls else contextlib.nullcontext()):
            for proc, url, tokens in procs.values():
                _post_rate(session, url, tokens, 2 * DISTINCT)  # first contacts and warm caches, unprofiled
                proc.send_signal(signal.SIGUSR1)
            rates: dict[int, list[float]] = {n: [] for n in SIZES}
            for rnd in range(3):  # interleaved, each size first in turn: the machine's load falls on both alike
                for n in (SIZES[::-1] if rnd % 2 else SIZES):
                    rates[n].append(_post_rate(session, procs[n][1], procs[n][2], args.posts // 3))
            for proc, _, _ in procs.values():
                proc.send_signal(signal.SIGUSR2)
            wait_for(lambda: all((work / f"{n}.prof").exists() for n in SIZES), 30)
            time.sleep(0.5)  # the dump is written in one go once the file appears; let it finish
        print({n: [round(r) for r in v] for n, v in rates.items()},
              f"ratio {max(rates[SIZES[1]]) / max(rates[SIZES[0]]):.2f} (profiled: slower than the bench)")
        print("\n".join(_grown(work / f"{SIZES[0]}.prof", work / f"{SIZES[1]}.prof", args.posts, args.top)))
    finally:
        for proc, _, _ in procs.values():
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    serve() if sys.argv[1:2] == ["serve"] else main()

"""`make demo`: the server plus one simulated dispenser per [[server.dispensers]], on any machine, until Ctrl-C.

Standard library only. Prints the dashboard URL on a line of its own; SIGINT or SIGTERM stops every child.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

from fleet_sim import FleetSimulator, fleet_config

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the demo runs with the example tokens: loopback only


def die_with_parent() -> None:
    """In a child, before exec: Linux sends it SIGTERM if the demo dies, even by SIGKILL (no orphans left)."""
    import ctypes

    # Without prctl (not glibc): Ctrl-C still stops everything, only a SIGKILL of the demo leaves orphans.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


CHILD_SETUP = die_with_parent if sys.platform.startswith("linux") else None


def port_is_free(port: int) -> bool:
    """True when nothing listens on HOST:port."""
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    """True when GET /healthz answers 200."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def stop_all(procs: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM every child at once, reap them; SIGKILL any still running after `timeout` seconds."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def arguments(argv: list[str] | None) -> tuple[argparse.Namespace, Path, dict[str, str]]:
    """The command line, the config to serve (generated for --fleet) and the fleet's tokens by dispenser id."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.toml", help="config.toml with [server] and [dispenser] tables")
    parser.add_argument("--mean-interval", type=float, help="mean seconds between simulated hands, per dispenser "
                        "(default 6, or 60 with --fleet)")
    parser.add_argument("--fleet", type=int, metavar="N", help="N dispensers in groups (site, buildings, floors, "
                        "wards) simulated in this process, with a config generated under instance/fleet-N")
    args = parser.parse_args(argv)
    config = Path(args.config).resolve()
    fleet_tokens: dict[str, str] = {}
    if args.fleet:
        config, fleet_tokens = fleet_config(config, args.fleet)
    if args.mean_interval is None:
        args.mean_interval = 60.0 if fleet_tokens else 6.0
    return args, config, fleet_tokens


def main(argv: list[str] | None = None) -> int:
    """Start everything, print the URL, wait for a signal, stop everything; 0 on a clean stop."""
    args, config, fleet_tokens = arguments(argv)
    with config.open("rb") as fh:
        server = tomllib.load(fh).get("server", {})
    declared = server.get("dispensers", [])
    if not declared and not fleet_tokens:
        print(f"error: {config} declares no [[server.dispensers]]", file=sys.stderr)
        return 2
    port = int(server.get("port", 5000))
    if not port_is_free(port):
        port = free_port()
        print(f"port {server.get('port', 5000)} is taken, using {port}", file=sys.stderr)
    url = f"http://{HOST}:{port}"
    instance = config.parent / "instance"
    instance.mkdir(exist_ok=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    # Own sessions: a terminal's Ctrl-C reaches only this script, which then stops the children in order.
    server_log = instance / "demo-server.log"
    with server_log.open("ab") as log:
        server_proc = subprocess.Popen(
            [sys.executable, "-m", "app", "--config", str(config), "--host", HOST, "--port", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=CHILD_SETUP)
    dispensers: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 30
        while not healthy(url):
            if server_proc.poll() is not None or time.monotonic() > deadline or stop.wait(0.1):
                print(f"error: the server did not start, see {server_log}", file=sys.stderr)
                return 0 if stop.is_set() else 1
        for table in declared:
            ident = str(table["id"])
            dispensers.append(subprocess.Popen(
                [sys.executable, str(ROOT / "dispenser.py"), "--config", str(config), "--simulate",
                 "--id", ident, "--token", str(table["token"]), "--server-url", url,
                 "--spool", str(instance / f"spool-{ident}.db"), "--mean-interval", str(args.mean_interval)],
                cwd=ROOT, stdout=sys.stderr, start_new_session=True, preexec_fn=CHILD_SETUP))
        if fleet_tokens:
            simulator = FleetSimulator(url, fleet_tokens, args.mean_interval, stop)
            threading.Thread(target=simulator.run, daemon=True).start()
        print(f"{url}/", flush=True)
        print(f"dashboard above; {len(dispensers) or len(fleet_tokens)} simulated dispensers; "
              f"server log: {server_log}; Ctrl-C stops", file=sys.stderr, flush=True)
        # Wake once a second only to notice a child that died on its own.
        while not stop.wait(1.0):
            if server_proc.poll() is not None:
                print(f"error: the server exited ({server_proc.returncode}), see {server_log}", file=sys.stderr)
                return 1
        return 0
    finally:
        stop_all(dispensers)  # first, while the server still answers, so they can flush their spools
        stop_all([server_proc])


if __name__ == "__main__":
    sys.exit(main())

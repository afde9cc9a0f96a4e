"""`make demo`: the server plus one simulated dispenser per [[server.dispensers]], on any machine, until Ctrl-C.

Standard library only. Prints the dashboard URL on a line of its own, then the log file that receives every line
of the server and the dispensers, then one short line per dose; SIGINT or SIGTERM stops every child.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import IO

from fleet_sim import FleetSimulator, fleet_config

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the demo runs with the example tokens: loopback only
# Two beams at each simulated door (people come in and go out), on BCM pins its [dispenser] table leaves free.
DOOR_PINS = (22, 23, 24, 25, 5, 6)
# A dispenser's dose line, as its logging prints it: the one line per dose the terminal shows.
DOSE = re.compile(r"^(?:\S+ )?(\d\d:\d\d:\d\d)\S* INFO dispenser dose dispenser=(\S+) .*gel_used=(\S+)")


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
    parser.add_argument("--mean-interval", type=float, help="mean seconds between simulated people coming in, per "
                        "dispenser (default 6, or 60 with --fleet); most of them use it")
    parser.add_argument("--fleet", type=int, metavar="N", help="N dispensers in groups (site, buildings, floors, "
                        "wards) simulated in this process, with a config generated under instance/fleet-N")
    parser.add_argument("--notify", action="store_true", help="alerts also leave the screen: a signed webhook to a "
                        "receiver printing each delivery, and MQTT when a broker answers on 127.0.0.1:1883")
    args = parser.parse_args(argv)
    config = Path(args.config).resolve()
    fleet_tokens: dict[str, str] = {}
    if args.fleet:
        config, fleet_tokens = fleet_config(config, args.fleet)
    if args.mean_interval is None:
        args.mean_interval = 60.0 if fleet_tokens else 6.0
    return args, config, fleet_tokens


class LogRelay:
    """Copies each dispenser's output into the demo's log file and shows one short line per dose on stdout."""

    def __init__(self, log: IO[str]):
        self.log = log
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def follow(self, stream: IO[str]) -> None:
        """Relay `stream` until its process closes it."""
        thread = threading.Thread(target=self._relay, args=(stream,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _relay(self, stream: IO[str]) -> None:
        for line in stream:
            dose = DOSE.match(line)
            with self._lock:
                self.log.write(line)
                self.log.flush()
                if dose:
                    clock, ident, gel = dose.groups()
                    print(f"{clock} dose {ident} {gel} ml", flush=True)

    def join(self, timeout: float = 10.0) -> None:
        """Wait for every stream to end (their processes exited)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def start_server(config: Path, port: int, log: IO[str]) -> subprocess.Popen:
    """The server, its output straight into the log file, in its own session (Ctrl-C reaches only the demo)."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", "--config", str(config), "--host", HOST, "--port", str(port), "--demo"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=CHILD_SETUP)


def door_flags(dispenser: dict) -> list[str]:
    """--entry-pin/--exit-pin for the simulated dispensers, unless the [dispenser] table has its own door."""
    if "entry_pin" in dispenser:
        return []
    taken = {dispenser.get(key) for key in ("sensor_pin", "servo_pin", "refill_pin")}
    outer, inner = [pin for pin in DOOR_PINS if pin not in taken][:2]
    return ["--entry-pin", str(outer), "--exit-pin", str(inner)]


def start_dispenser(config: Path, table: dict, url: str, instance: Path, mean: float,
                    door: list[str]) -> subprocess.Popen:
    """One simulated dispenser (people coming through its door); its log lines come back through a pipe."""
    ident = str(table["id"])
    return subprocess.Popen(
        [sys.executable, str(ROOT / "dispenser.py"), "--config", str(config), "--simulate",
         "--id", ident, "--token", str(table["token"]), "--server-url", url,
         "--spool", str(instance / f"spool-{ident}.db"), "--mean-interval", str(mean), *door],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=CHILD_SETUP)


def wait_healthy(url: str, server: subprocess.Popen, stop: threading.Event, timeout: float = 30) -> bool:
    """True once the server answers /healthz; False if it died, the time ran out or we were stopped."""
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if server.poll() is not None or time.monotonic() > deadline or stop.wait(0.1):
            return False
    return True


def pick_port(server: dict) -> int:
    """The configured port, or a free one when it is taken."""
    port = int(server.get("port", 5000))
    if port_is_free(port):
        return port
    free = free_port()
    print(f"port {port} is taken, using {free}", file=sys.stderr)
    return free


def main(argv: list[str] | None = None) -> int:
    """Start everything, print the URL, wait for a signal, stop everything; 0 on a clean stop."""
    args, config, fleet_tokens = arguments(argv)
    with config.open("rb") as fh:
        document = tomllib.load(fh)
    server, door = document.get("server", {}), door_flags(document.get("dispenser", {}))
    declared = server.get("dispensers", [])
    if not declared and not fleet_tokens:
        print(f"error: {config} declares no [[server.dispensers]]", file=sys.stderr)
        return 2
    port = pick_port(server)
    url = f"http://{HOST}:{port}"
    # A fleet's generated config already lives in instance/fleet-N: its log goes beside it, not one level deeper.
    instance = config.parent if fleet_tokens else config.parent / "instance"
    instance.mkdir(exist_ok=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    served = config
    if args.notify:
        from demo_notify import notify_config

        served, _receiver = notify_config(config, instance, lambda line: print(line, flush=True))
    log_path = instance / "demo.log"
    with log_path.open("a", encoding="utf-8", buffering=1) as log:
        relay = LogRelay(log)
        server_proc = start_server(served, port, log)
        dispensers: list[subprocess.Popen] = []
        try:
            if not wait_healthy(url, server_proc, stop):
                print(f"error: the server did not start, see {log_path}", file=sys.stderr)
                return 0 if stop.is_set() else 1
            for table in declared:
                dispensers.append(start_dispenser(config, table, url, instance, args.mean_interval, door))
                relay.follow(dispensers[-1].stdout)
            if fleet_tokens:
                # The history first, then the URL: a first look at the page is not a sea of offline alerts.
                print(f"sending the history of {len(fleet_tokens)} dispensers...", flush=True)
                simulator = FleetSimulator(url, fleet_tokens, args.mean_interval, stop)
                simulator.history()
                if stop.is_set():
                    return 0
                threading.Thread(target=simulator.live, daemon=True).start()
            print(f"{url}/", flush=True)
            print(f"logs: {log_path}", flush=True)
            shown = "" if fleet_tokens else ", one line per dose below"
            print(f"{len(dispensers) or len(fleet_tokens)} simulated dispensers{shown}; Ctrl-C stops", flush=True)
            # Wake once a second only to notice a server that died on its own.
            while not stop.wait(1.0):
                if server_proc.poll() is not None:
                    print(f"error: the server exited ({server_proc.returncode}), see {log_path}", file=sys.stderr)
                    return 1
            return 0
        finally:
            stop_all(dispensers)  # first, while the server still answers, so they can flush their spools
            stop_all([server_proc])
            relay.join()


if __name__ == "__main__":
    sys.exit(main())

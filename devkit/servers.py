"""Run the real server as a child process on a free port, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from devkit.forked import Forked, Zygote

ROOT = CHECKOUT = Path(__file__).resolve().parents[1]
# GEL_TEST_SPAWN=1: every server a fresh `python -m app`, none forked from the zygote (devkit/zygote.py).
SPAWN_ALL = os.environ.get("GEL_TEST_SPAWN", "").lower() in ("1", "true", "yes", "on")


def xdist_worker() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker; (0, 1) outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return (int(name[2:]) if name.startswith("gw") else 0), max(count, 1)


def free_port() -> int:
    """A TCP port nobody listens on right now; under pytest-xdist, one that no other worker can be given."""
    index, count = xdist_worker()
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # Linux hands out odd ports to bind() and even ones to connect(), hence the halving.
        if (port >> 1) % count == index:
            return port


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the thing we wait for may not exist yet
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message} (last error: {last_exc!r})")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Stop `proc` with `sig` and reap it, kill -9 if it has not exited within `timeout`; its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """`proc`, killed and reaped on the way out if it is still running: a failed test leaves no process behind."""
    try:
        yield proc
    finally:
        stop_process(proc, signal.SIGKILL)


class PortTaken(AssertionError):
    """The server could not bind its port."""


def async_mode(config_path: Path) -> str | None:
    """The config's [server] async_mode, None if the file does not parse (the server itself will say why)."""
    try:
        with open(ROOT / config_path, "rb") as f:  # the server reads it from ROOT, its working directory
            return tomllib.load(f).get("server", {}).get("async_mode", "eventlet")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return None


class ServerProcess:
    """`python -m app --config CONFIG --port PORT` as a child process.

    By default it is forked from a zygote that has already imported the server (devkit/zygote.py): the same
    entry point, without a second of imports per start. `spawn=True` (or GEL_TEST_SPAWN=1) runs a fresh
    interpreter, for the tests whose subject is the process start itself.
    """

    def __init__(self, config_path: Path, port: int | None = None, log_path: Path | None = None,
                 spawn: bool = False, async_mode: str | None = None):
        self.spawn = spawn or SPAWN_ALL
        self.async_mode = async_mode  # this stack whatever the config or the suite's GEL_TEST_ASYNC_MODE says
        self.config_path = Path(config_path)
        self.fixed_port, self.own_log = port is not None, log_path is not None
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or self.config_path.with_name(f"server-{self.port}.log")
        self.proc: subprocess.Popen | Forked | None = None

    def start(self, timeout: float = 20.0) -> ServerProcess:
        """Start the server and wait until /healthz answers 200 (on another free port if its own was just taken)."""
        for _ in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                if self.fixed_port:
                    raise
            # Something (another test's client or server) took the port between free_port() and the bind.
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            if not self.own_log:
                self.log_path = self.config_path.with_name(f"server-{self.port}.log")
        return self._start(timeout)

    def _start(self, timeout: float) -> ServerProcess:
        args = ["--config", str(self.config_path), "--port", str(self.port)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # A test that points ROOT at a copy of the code runs that copy: only a fresh interpreter imports it.
        # The suite runs in another stack with GEL_TEST_ASYNC_MODE (make test-gevent); a test of one stack pins it.
        chosen = self.async_mode or os.environ.get("GEL_TEST_ASYNC_MODE")
        if chosen:
            env["GEL_ASYNC_MODE"] = chosen
        mode = None if self.spawn or ROOT != CHECKOUT else (chosen or async_mode(self.config_path))
        if mode in ("eventlet", "gevent", "threading"):
            self.proc = Zygote.of(mode).start(args, str(ROOT), env, str(self.log_path))
        else:
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, stdout=log,
                                             stderr=subprocess.STDOUT, env=env)

        def healthy_or_gone() -> bool:
            return self.proc.poll() is not None or requests.get(self.url + "/healthz", timeout=1).status_code == 200

        wait_for(healthy_or_gone, timeout, message=f"server on {self.url}")
        if self.proc.poll() is not None:
            output = self.log()
            if "Address already in use" in output:
                raise PortTaken(output)
            raise AssertionError(f"server exited with {self.proc.returncode}: {output}")
        self.fixed_port = True  # a restart comes back where its clients wait for it
        return self

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the server with `sig` (SIGKILL for a crash) and reap it."""
        if self.proc:
            stop_process(self.proc, sig, timeout)
        self.proc = None

    def kill(self) -> None:
        """kill -9: no chance to flush anything."""
        self.stop(signal.SIGKILL)

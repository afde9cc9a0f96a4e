"""A pre-loaded parent that forks server processes for the tests: `python -m app` without its second of imports.

`python -m tests.helpers.zygote eventlet|threading` does what `python -m app` does before it reads its arguments
(eventlet's monkey patch first in eventlet mode, then Flask, SQLAlchemy, Socket.IO and the app), then waits for
requests on stdin, one JSON line each, and answers on stdout:
  {"start": {"args": [...], "cwd": ..., "env": {...}, "log": ..., "nofile": [soft, hard]}} -> {"pid": N}
  {"status": N} -> {"returncode": null while it runs, else as subprocess.Popen gives it}
Each child runs app.__main__.main(args) with its own log as stdout and stderr, working directory, environment and
open-files limit, and exits with what main returns, as the real entry point does. The zygote never runs the
eventlet hub, so each child starts one of its own. It exits, killing any child still running, when stdin closes.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def preload(mode: str) -> None:
    """Import what the server imports, in the same order as app.__main__.main does."""
    if mode == "eventlet":
        import warnings

        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
    import app.__main__
    import app.factory
    import app.logs
    import app.realtime.watchdog  # noqa: F401


def exit_code(value: Any) -> int:
    """The exit status of `sys.exit(value)`."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def run_child(request: dict[str, Any]) -> int:
    """In the forked child: become the server the request describes, run it, return its exit status."""
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    # What PYTHONUNBUFFERED gives a fresh interpreter: every line reaches the log at once.
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True, line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True, line_buffering=True,
                                  errors="backslashreplace")
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    soft, hard = request["nofile"]
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    sys.argv = [os.path.join(request["cwd"], "app", "__main__.py"), *request["args"]]
    from app.__main__ import main

    try:
        return exit_code(main(request["args"]))
    except SystemExit as exc:
        return exit_code(exc.code)
    except BaseException:  # what the interpreter does with an uncaught exception: print it, exit 1
        traceback.print_exc()
        return 1


def fork_child(request: dict[str, Any]) -> int:
    """Fork a server for `request`; the child never comes back into the request loop."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = run_child(request)
        atexit._run_exitfuncs()  # what a normal interpreter exit runs (logging's flush among others)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed log: nothing more to say
                stream.flush()
        os._exit(code)


def returncode(status: int) -> int:
    """A wait status as subprocess.Popen.returncode gives it (minus the signal number for a killed process)."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def serve() -> None:
    """Answer requests from stdin until it closes; then kill and reap every child still running."""
    ended: dict[int, int] = {}
    running: set[int] = set()

    def reap() -> None:
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                return
            running.discard(pid)
            ended[pid] = returncode(status)

    for line in sys.stdin.buffer:
        request = json.loads(line)
        reap()
        if "start" in request:
            pid = fork_child(request["start"])
            running.add(pid)
            answer = {"pid": pid}
        else:
            pid = request["status"]
            answer = {"returncode": ended.get(pid) if pid not in running else None}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    for pid in running:
        os.kill(pid, signal.SIGKILL)
    for pid in list(running):
        os.waitpid(pid, 0)


class Forked:
    """A server forked by a zygote, with the parts of subprocess.Popen the tests use."""

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid, self.returncode = zygote, pid, None

    def poll(self) -> int | None:
        """The exit status once the server has ended, else None."""
        if self.returncode is None:
            self.returncode = self.zygote.ask({"status": self.pid})["returncode"]
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end (subprocess.TimeoutExpired after `timeout` seconds); the exit status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"server {self.pid}", timeout)
            time.sleep(0.01)  # one status request per wakeup: this loop waits on the exit, not a duration
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the server if it still runs."""
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The client side: one zygote process per async mode, started on first use, stopped with this process."""

    _started: dict[str, Zygote] = {}
    _guard = threading.Lock()

    def __init__(self, mode: str):
        self.mode = mode
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.zygote", mode], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        atexit.register(self.close)

    @classmethod
    def of(cls, mode: str) -> Zygote:
        """The running zygote for `mode` (started now if there is none)."""
        with cls._guard:
            zygote = cls._started.get(mode)
            if zygote is None or zygote.proc.poll() is not None:
                zygote = cls._started[mode] = cls(mode)
            return zygote

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request, one answer."""
        with self.lock:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.mode} zygote exited with {self.proc.wait()}")
        return json.loads(line)

    def start(self, args: list[str], cwd: str, env: dict[str, str], log: str) -> Forked:
        """Fork `python -m app ARGS` with this process's open-files limit, as a spawned child would inherit it."""
        nofile = list(resource.getrlimit(resource.RLIMIT_NOFILE))
        answer = self.ask({"start": {"args": args, "cwd": cwd, "env": env, "log": log, "nofile": nofile}})
        return Forked(self, answer["pid"])

    def close(self) -> None:
        """Stop the zygote: it kills what it still runs."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


if __name__ == "__main__":
    preload(sys.argv[1])
    serve()

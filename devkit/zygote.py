"""A pre-loaded parent that forks server processes (tests, benchmarks): `python -m app` without its second of imports.

`python -m devkit.zygote eventlet|gevent|threading` imports what `python -m app` imports, in the same order
(app.__main__ and its config first, the mode's monkey patch next (app.serve.prepare), then Flask, SQLAlchemy,
Socket.IO and the app), then answers requests from stdin, one JSON line each, on stdout:
  {"start": {"args": [...], "cwd": ..., "env": {...}, "log": ..., "nofile": [soft, hard]}} -> {"pid": N}
  {"status": N} -> {"returncode": null while it runs, else as subprocess.Popen gives it}
  {"signal": N, "sig": S} -> {"sent": true if N still ran and got S}
Only the zygote reaps its children, so a pid it answers about is never one the system gave to another process.
Each child gets its own event hub, log (stdout and stderr), working directory, environment and open-files limit,
runs app.__main__.main(args), and ends as the interpreter would: non-daemon threads joined, atexit handlers run.
The zygote exits, killing any child still running, when stdin closes. The client is devkit/forked.py.
"""

from __future__ import annotations

import sys

import app.__main__  # what a real start imports before anything else: its config, logging, the toolkit
import app.serve

MODE = sys.argv[1] if __name__ == "__main__" else "threading"
app.serve.prepare(MODE)  # as app.__main__.main does it, before Flask, SQLAlchemy or redis load

import contextlib  # noqa: E402  (after the patch, as in the server)
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

import app.factory  # noqa: E402
import app.live.watchdog  # noqa: E402
import app.logs  # noqa: E402
import app.serve.tasks  # noqa: E402

if MODE == "threading":
    import app.serve.threads


def exit_code(value: Any) -> int:
    """The exit status of `sys.exit(value)`."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def own_hub() -> None:
    """Give the child an event hub of its own: eventlet made one (an epoll) in the zygote, shared by every fork."""
    if MODE == "eventlet":
        from eventlet import hubs

        inherited = hubs.get_hub()
        del hubs._threadlocal.hub  # get_hub() makes a new one on first use
        inherited.poll.close()


def become(request: dict[str, Any]) -> None:
    """In the forked child: take the log, directory, environment and limits the request describes."""
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
    own_hub()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    resource.setrlimit(resource.RLIMIT_NOFILE, tuple(request["nofile"]))
    sys.argv = [os.path.join(request["cwd"], "app", "__main__.py"), *request["args"]]


def run_child(request: dict[str, Any]) -> int:
    """Become the server, run it, end as an interpreter does; return the exit status."""
    become(request)
    try:
        code = exit_code(app.__main__.main(request["args"]))
    except SystemExit as exc:
        code = exit_code(exc.code)
    except KeyboardInterrupt:  # as the interpreter does: the traceback, then death by SIGINT
        traceback.print_exc()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 1
    except BaseException:  # an uncaught exception: printed, exit status 1
        traceback.print_exc()
        code = 1
    import atexit
    import threading

    threading._shutdown()  # non-daemon threads are waited for, then the atexit handlers run
    atexit._run_exitfuncs()
    return code


def fork_child(request: dict[str, Any]) -> int:
    """Fork a server for `request`; the child never comes back into the request loop."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = run_child(request)
    except BaseException:  # a failure to become the server (no log, no directory): said, not swallowed
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed log: nothing more can be said
                stream.flush()
        os._exit(code)


def returncode(status: int) -> int:
    """A wait status as subprocess.Popen.returncode gives it (minus the signal number for a killed process)."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


class Children:
    """The zygote's children: those running, and how the others ended."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.ended: dict[int, int] = {}

    def reap(self) -> None:
        """Collect the children that have ended."""
        while self.running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                return
            self.running.discard(pid)
            self.ended[pid] = returncode(status)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request's answer."""
        self.reap()
        if "start" in request:
            pid = fork_child(request["start"])
            self.running.add(pid)
            return {"pid": pid}
        pid = request.get("status", request.get("signal"))
        if pid not in self.running and pid not in self.ended:
            return {"error": f"no child {pid}"}
        if "signal" in request:
            if pid in self.running:  # not reaped: still ours, whatever the system does with pids
                os.kill(pid, request["sig"])
            return {"sent": pid in self.running}
        return {"returncode": None if pid in self.running else self.ended[pid]}

    def kill_all(self) -> None:
        """SIGKILL every child still running and reap it."""
        for pid in self.running:
            os.kill(pid, signal.SIGKILL)
        for pid in self.running:
            os.waitpid(pid, 0)
        self.running.clear()


def serve() -> None:
    """Answer requests from stdin until it closes; then kill and reap every child still running."""
    children = Children()
    try:
        for line in sys.stdin.buffer:
            sys.stdout.write(json.dumps(children.answer(json.loads(line))) + "\n")
            sys.stdout.flush()
    finally:
        children.kill_all()


if __name__ == "__main__":
    serve()

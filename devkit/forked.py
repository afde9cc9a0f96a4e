"""The client side of the zygote (devkit/zygote.py): servers forked from it, handled like subprocesses."""

from __future__ import annotations

import atexit
import json
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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
        """Signal the server if it still runs (through the zygote, which alone knows whether the pid is still it)."""
        if self.returncode is None:
            self.zygote.ask({"signal": self.pid, "sig": int(sig)})

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


class Zygote:
    """One zygote process per async mode, started on first use, stopped with this process."""

    _started: dict[str, Zygote] = {}
    _guard = threading.Lock()

    def __init__(self, mode: str):
        self.mode = mode
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, "-m", "devkit.zygote", mode], cwd=ROOT,
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
            try:
                self.proc.stdin.write((json.dumps(request) + "\n").encode())
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except BrokenPipeError:
                line = b""
        if not line:
            raise RuntimeError(f"the {self.mode} zygote exited with {self.proc.wait()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the {self.mode} zygote: {answer['error']}")
        return answer

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

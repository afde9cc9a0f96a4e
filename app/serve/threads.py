"""threading: gunicorn's gthread worker, one process of real threads, started by `python -m app` as the others.

The process `python -m app` becomes gunicorn's arbiter; its one worker builds the app after the fork (database
connections and threads do not survive one). A websocket holds a thread for its whole life, so the pool is sized
from max_dashboards, with room left for the HTTP requests (a refused dashboard also needs a thread to be told).
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

REQUEST_THREADS = 64  # threads beyond max_dashboards, for HTTP requests and refusals


def thread_count(cfg: Any) -> int:
    """One thread per dashboard allowed, plus REQUEST_THREADS for the requests."""
    return cfg.max_dashboards + REQUEST_THREADS


class ForwardingArbiter(Arbiter):
    """gunicorn's arbiter, except that SIGHUP goes to the worker, which re-reads the config in place.

    gunicorn's own SIGHUP would start a new worker and stop the old one: every dashboard would reconnect and the
    app's state would be rebuilt, where the other stacks reload without dropping anyone.
    """

    def handle_hup(self) -> None:
        """Forward SIGHUP to the worker (app/serve/tasks.py reload_on_sighup)."""
        for pid in list(self.WORKERS):
            self.kill_worker(pid, signal.SIGHUP)


class IdleTimeoutWorker(ThreadWorker):
    """gthread with eventlet's socket_timeout: a request silent for idle_timeout_s (slowloris) is closed."""

    idle_timeout_s = 60.0

    def handle(self, conn: Any) -> Any:
        """Serve one connection's next request, with the idle timeout on its socket."""
        conn.sock.settimeout(self.idle_timeout_s)
        return super().handle(conn)


class QuietTimeouts(logging.Filter):
    """gunicorn logs a connection closed for idleness as a socket error with its traceback: it is routine here."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a timed-out socket's record."""
        return not (record.exc_info and isinstance(record.exc_info[1], TimeoutError))


class ThroughLogging(Logger):
    """gunicorn's records through the server's own logging (app/logs.py): one format, secrets and query values hidden.

    gunicorn's default logger writes to stderr with handlers of its own, which would print a token sent in a URL.
    """

    def setup(self, cfg: Any) -> None:
        """Levels only: no handler of gunicorn's own, the records go up to the root logger's."""
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)
        for found in (self.error_log, self.access_log):
            found.handlers.clear()
            found.propagate = True
        self.error_log.addFilter(QuietTimeouts())


class Gunicorn(BaseApplication):
    """gunicorn configured from [server], its worker building the app with `build`."""

    def __init__(self, build: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.build, self.options = build, options
        super().__init__()

    def load_config(self) -> None:
        """The options, as gunicorn's command line would set them."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """In the worker, after the fork: the app and its background tasks."""
        return self.build()

    def run(self) -> None:
        """gunicorn's run, with the arbiter that forwards SIGHUP."""
        ForwardingArbiter(self).run()


def serve(build: Callable[[], Flask], cfg: Any, host: str, port: int) -> None:
    """Serve until stopped: one worker, a thread per dashboard, at most max_connections open."""
    threads = thread_count(cfg)
    IdleTimeoutWorker.idle_timeout_s = cfg.idle_timeout_s
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    Gunicorn(build, {
        "bind": bind, "workers": 1, "worker_class": f"{__name__}.IdleTimeoutWorker", "threads": threads,
        # Keep-alive connections wait in the worker's poller, not in a thread: these are in addition.
        "worker_connections": max(cfg.max_connections, threads + REQUEST_THREADS),
        "keepalive": max(1, math.ceil(cfg.idle_timeout_s)), "graceful_timeout": 1, "loglevel": cfg.log_level.lower(),
        "accesslog": "-" if cfg.log_level.upper() == "DEBUG" else None, "proc_name": "gel-server",
        "logger_class": f"{__name__}.ThroughLogging",
    }).run()

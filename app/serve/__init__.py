"""Serving the app in the configured stack (`async_mode`): the only package that knows eventlet, gevent or gunicorn.

eventlet and gevent (app/serve/green.py) run one process of green threads; threading runs gunicorn's gthread
worker (app/serve/threads.py), one process of real threads. Each builds the same app with the same background
tasks (app/serve/tasks.py) and applies the same limits: idle connections closed after idle_timeout_s, at most
max_connections open, the Socket.IO guard.
"""

from __future__ import annotations

from typing import Any


def prepare(mode: str) -> None:
    """Patch the standard library for a green mode, before Flask, SQLAlchemy or redis load (nothing for threading)."""
    from app.serve import green

    green.patch(mode)


def serve(cfg: Any, config_path: str, demo: bool, host: str, port: int) -> None:
    """Build the app with its background tasks and serve it in `cfg.async_mode` until the process is stopped."""
    from app.serve import tasks

    tasks.raise_open_files_limit(cfg.max_connections)
    if cfg.async_mode == "threading":
        from app.serve import threads

        # gunicorn forks its worker: the app, its database connections and its threads are made in the worker.
        threads.serve(lambda: tasks.build(cfg, config_path, demo, "gunicorn gthread"), cfg, host, port)
        return
    from app.serve import green

    app = tasks.build(cfg, config_path, demo, green.SERVERS[cfg.async_mode])
    green.serve(app, cfg, host, port)


def running_stack() -> str:
    """What really serves: the module behind socket.socket (a green library once patched, else the standard one)."""
    import socket

    module = socket.socket.__module__.split(".")[0]
    return module if module in ("eventlet", "gevent") else "threads"


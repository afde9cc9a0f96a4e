"""The app as every stack serves it: built, its background tasks started, SIGHUP re-reading the config."""

from __future__ import annotations

import os
import signal
from logging import getLogger
from typing import Any

from flask import Flask

log = getLogger("app.serve")


def raise_open_files_limit(connections: int) -> None:
    """Let the process hold `connections` sockets plus its own files: the usual soft limit is only 1024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256  # the database, the log, Redis, the listening socket
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard),
                                                    hard))


def build(cfg: Any, config_path: str, demo: bool, server: str) -> Flask:
    """The app with the watchdog, notifications, MQTT and retention running, and SIGHUP reloading its config."""
    from app.factory import create_app
    from app.live import socketio
    from app.live.watchdog import AlertMemory, run_watchdog
    from app.metrics import get_metrics
    from app.notify.worker import run_notifications
    from app.serve import running_stack
    from app.store.retention import run_retention
    from app.web.views import package_version

    app = create_app(cfg, demo=demo)
    with app.app_context():
        get_metrics().server.info({"async_mode": socketio.server.eio.async_mode, "server": server,
                                   "stack": running_stack()})
    log.info("serving with %s (async_mode %s)", server, cfg.async_mode)
    socketio.start_background_task(run_watchdog, app)
    lease = AlertMemory(cfg.message_queue, lease_s=10, key="gel:notify:leader")  # one process delivers
    socketio.start_background_task(run_notifications, app, socketio.sleep, lease.leader)
    if cfg.mqtt is not None:
        from app.mqtt.publisher import run_publisher

        socketio.start_background_task(run_publisher, app, socketio.sleep, package_version())
    if cfg.keep_events_days is not None:
        socketio.start_background_task(run_retention, app.extensions["usage_store"], cfg.keep_events_days,
                                       socketio.sleep)
    reload_on_sighup(app, config_path, demo, cfg.async_mode)
    return app


def reload_on_sighup(app: Flask, path: str, demo: bool, mode: str) -> None:
    """SIGHUP (`systemctl reload gel-server`) re-reads the config (app/live/reload.py), off the signal handler.

    Python's own handler writes the signal's number to a pipe (signal.set_wakeup_fd): a task blocked reading it
    wakes at once, in any mode (a green read under eventlet and gevent, a thread's read under threading). Work in
    the handler itself would run inside the green hub, and a task merely spawned from it would wait for the next
    network event.
    """
    from app.live import socketio
    from app.live.reload import reload_config

    wake, woken = os.pipe()
    os.set_blocking(woken, False)  # the interpreter's handler never blocks on it
    read = os.read
    if mode == "gevent":  # gevent leaves os.read blocking: its own read waits on the hub
        from gevent.os import nb_read

        os.set_blocking(wake, False)
        read = nb_read

    def reload_when_asked() -> None:
        while True:
            if signal.SIGHUP in read(wake, 64):  # other signals with a Python handler (SIGINT) write there too
                reload_config(app, path, demo)

    signal.signal(signal.SIGHUP, lambda *_: None)
    signal.set_wakeup_fd(woken, warn_on_full_buffer=False)
    socketio.start_background_task(reload_when_asked)

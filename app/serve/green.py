"""eventlet and gevent: one process of green threads, each library's own WSGI server on a listener we make."""

from __future__ import annotations

import signal
import socket
from logging import getLogger
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nothing heavy at import: patch() runs before Flask loads
    from flask import Flask

SERVERS = {"eventlet": "eventlet.wsgi", "gevent": "gevent.pywsgi"}


def patch(mode: str) -> None:
    """eventlet's or gevent's monkey patch, before Flask, SQLAlchemy or redis load; nothing for threading."""
    if mode == "eventlet":
        import warnings

        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # its text starts with a newline
        import eventlet

        eventlet.monkey_patch()
    elif mode == "gevent":
        from gevent import monkey

        monkey.patch_all()


def interrupt_main_on_sigint(mode: str) -> None:
    """SIGINT (Ctrl-C) ends the server whichever green thread runs when it lands.

    Python raises KeyboardInterrupt in whatever runs at that instant; in a patched thread's green thread,
    threading's catch-all prints it and swallows it, and the server ran on (seen once in CI under gevent; a busy
    patched thread shows it every time under both libraries). It is thrown into the main green thread instead.
    """
    import greenlet

    main = greenlet.getcurrent()
    if mode == "gevent":
        import gevent

        gevent.signal_handler(signal.SIGINT, main.throw, KeyboardInterrupt)  # run by gevent's loop, off the handler
        return
    from eventlet.hubs import get_hub

    def on_sigint(signum: int, frame: Any) -> None:
        if greenlet.getcurrent() is main:
            raise KeyboardInterrupt
        get_hub().schedule_call_global(0, main.throw, KeyboardInterrupt)

    signal.signal(signal.SIGINT, on_sigint)


def listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket (green once patched) whose connections send at once.

    TCP_NODELAY is inherited by every accepted connection: without it a push written in two pieces (eventlet
    writes a websocket frame's header and payload apart) waited for the client's delayed ACK, 20 ms about once
    in 100 pushes (BENCHMARKS.md, server stacks).
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(address)
    sock.listen(backlog)
    return sock


def serve(app: Flask, cfg: Any, host: str, port: int) -> None:
    """Serve until stopped: idle connections closed after idle_timeout_s, at most max_connections at once."""
    from app.logs import ACCESS_LOGGER

    sock = listener(host, port)
    interrupt_main_on_sigint(cfg.async_mode)
    log_output = cfg.log_level.upper() == "DEBUG"
    if cfg.async_mode == "eventlet":
        import eventlet.wsgi

        # eventlet writes its request lines straight to stderr unless given a logger: through logging they are
        # redacted. Slow or idle connections (slowloris) are closed after idle_timeout_s; past max_connections
        # the next ones wait in the listen queue. Websockets get Engine.IO's own ping timeout.
        eventlet.wsgi.server(sock, app, log=getLogger(ACCESS_LOGGER), log_output=log_output,
                             socket_timeout=cfg.idle_timeout_s, keepalive=cfg.idle_timeout_s,
                             max_size=cfg.max_connections)
        return
    import gevent
    from gevent.pool import Pool
    from gevent.pywsgi import WSGIServer
    from gevent.socket import socket as green_socket

    class FairSocket(green_socket):
        """A gevent socket whose recv() lets the others run first.

        simple-websocket reads each websocket in a loop of its own; a client that floods it always has data, so
        gevent's recv() would never wait and that loop would hold the process (eventlet reads in the handler,
        where the Socket.IO guard yields). The HTTP side reads with recv_into(), unchanged.
        """

        def recv(self, *args: Any) -> bytes:
            gevent.sleep(0)
            return super().recv(*args)

    class IdleTimeoutServer(WSGIServer):
        """pywsgi with eventlet's socket_timeout (a connection silent for idle_timeout_s is closed), fair reads."""

        def handle(self, client: Any, address: Any) -> None:
            client = FairSocket(client.family, client.type, client.proto, fileno=client.detach())
            client.settimeout(cfg.idle_timeout_s)
            super().handle(client, address)

    # A full pool stops the accepting (the next connections wait in the listen queue), as eventlet's max_size.
    server = IdleTimeoutServer(sock, app, spawn=Pool(cfg.max_connections),
                               log=getLogger(ACCESS_LOGGER) if log_output else None,
                               error_log=getLogger("app.serve"))
    server.serve_forever()

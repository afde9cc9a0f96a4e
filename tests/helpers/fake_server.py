"""A fake usage server on a free port (http.server): records what it received and answers as a test says."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENTS_PATH = "/mettre_a_jour_donnees"


class Handler(BaseHTTPRequestHandler):
    """Records every request on its server, then lets the server's `behave(handler, batch)` answer it."""

    server: Fake

    def do_GET(self) -> None:
        self.server.record(self, None)
        self.server.behave(self, None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.record(self, body)
        self.server.behave(self, body)

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> None:
        """One whole answer with a Content-Length."""
        self.send_response(status)
        for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Fake(ThreadingHTTPServer):
    """A threaded http.server on a free port: what it received, and a `behave` that answers."""

    daemon_threads = True

    def __init__(self, behave: Callable[[Handler, bytes | None], None]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.behave = behave
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.bodies: list[bytes | None] = []
        self.times: list[float] = []  # time.monotonic() of each request's arrival
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def record(self, handler: Handler, body: bytes | None) -> None:
        with self.lock:
            self.requests.append((handler.command, handler.path, dict(handler.headers)))
            self.bodies.append(body)
            self.times.append(time.monotonic())

    def post_times(self, path: str = EVENTS_PATH) -> list[float]:
        """When each POST to `path` arrived (time.monotonic()), in order."""
        with self.lock:
            return [t for (method, p, _), t in zip(self.requests, self.times, strict=True)
                    if method == "POST" and p.endswith(path)]

    def posts(self, path: str = EVENTS_PATH) -> int:
        """How many POSTs to `path` it received."""
        with self.lock:
            return sum(1 for method, p, _ in self.requests if method == "POST" and p.endswith(path))


def counts_right(handler: Handler, body: bytes | None) -> None:
    """What the usage server answers: each event accepted; heartbeats and refills acknowledged."""
    if body is not None and handler.path == EVENTS_PATH:
        batch = json.loads(body)
        return handler.send(200, json.dumps({"accepted": len(batch), "duplicates": 0}).encode())
    return handler.send(200, json.dumps({"status": "ok", "dispenser": {"id": "entree"}}).encode())

"""A real HTTP receiver on a free port, for webhooks and Apprise's HTTP services: records what arrives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """What arrived (method, path, headers, body), and what to answer next (`status`)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def bodies(self) -> list[Any]:
        """The JSON bodies of the requests answered 2xx, in arrival order."""
        with self.lock:
            return [json.loads(r["body"]) for r in self.received if 200 <= r["status"] < 300]


@contextmanager
def receiver(port: int = 0) -> Iterator[Receiver]:
    """A Receiver serving on 127.0.0.1 until the block ends."""
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            status = box.status
            with box.lock:
                box.received.append({"method": "POST", "path": self.path, "headers": dict(self.headers),
                                     "body": body, "status": status})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    box.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=box.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield box
    finally:
        box.server.shutdown()
        box.server.server_close()

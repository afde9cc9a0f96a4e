"""Socket.IO clients that cannot hurt the server: connections capped, a client that stops reading dropped."""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
from typing import Any

log = logging.getLogger(__name__)
# What may wait for one client. A client that reads has a packet or two waiting; a long-polling one collects
# what came between two polls. Past either bound it is not reading: it is dropped (a dashboard reconnects and
# gets the full figures). Packets are shared between clients, so this bounds what non-readers keep alive.
MAX_QUEUED_BYTES = 2 * 1024 * 1024
MAX_QUEUED = 1000
CHECK_FROM = 8  # packets waiting before the bytes are counted: a reading client costs nothing


def client_address(environ: dict[str, Any]) -> str | None:
    """The address a connection is counted against; None for a local process that is not a proxy."""
    peer = environ.get("REMOTE_ADDR") or ""
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return None
    if not local:
        return peer
    # Through the shipped nginx every connection comes from loopback; nginx appends the real peer last.
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    return forwarded or None


def stopped_reading(waiting: Any) -> bool:
    """True when a client's queue holds more than it could hold if it were reading."""
    packets = list(getattr(waiting, "queue", ()))  # the queue's deque, in the standard and eventlet queues alike
    size = sum(len(p.data) for p in packets if isinstance(getattr(p, "data", None), str | bytes))
    return len(packets) >= MAX_QUEUED or size >= MAX_QUEUED_BYTES


class DashboardGuard:
    """Wraps one Engine.IO server: refuses connections past the caps, drops clients that stop reading."""

    def __init__(self, eio: Any, max_total: int, max_per_address: int):
        self.eio = eio
        self.max_total, self.max_per_address = max_total, max_per_address
        self.lock = threading.Lock()
        self.address_of: dict[str, str | None] = {}  # Engine.IO sid -> counted address
        self.per_address: dict[str, int] = {}
        self._connect = eio.handlers["connect"]
        self._disconnect = eio.handlers["disconnect"]
        self._send_packet = eio.send_packet
        eio.on("connect", self.connect)
        eio.on("disconnect", self.disconnect)
        eio.send_packet = self.send_packet

    def connect(self, sid: str, environ: dict[str, Any], *args: Any) -> Any:
        """Admit the connection if the caps allow it (False refuses it: HTTP 401 before any payload)."""
        address = client_address(environ)
        with self.lock:
            if len(self.address_of) >= self.max_total:
                log.warning("dashboard refused: %d connections already", len(self.address_of))
                return False
            if address is not None and self.per_address.get(address, 0) >= self.max_per_address:
                log.warning("dashboard refused: %d connections already from %s", self.max_per_address, address)
                return False
            self.address_of[sid] = address
            if address is not None:
                self.per_address[address] = self.per_address.get(address, 0) + 1
        try:
            accepted = self._connect(sid, environ, *args)
        except BaseException:
            self._forget(sid)
            raise
        if accepted is not None and accepted is not True:
            self._forget(sid)
        return accepted

    def disconnect(self, sid: str, *args: Any) -> Any:
        """Count the connection out, then let Socket.IO know."""
        self._forget(sid)
        return self._disconnect(sid, *args)

    def _forget(self, sid: str) -> None:
        with self.lock:
            address = self.address_of.pop(sid, None)
            if address is not None:
                left = self.per_address.get(address, 1) - 1
                if left > 0:
                    self.per_address[address] = left
                else:
                    self.per_address.pop(address, None)

    def send_packet(self, sid: str, pkt: Any) -> None:
        """Queue a packet for a client, unless its queue shows it stopped reading: then drop the client."""
        sock = self.eio.sockets.get(sid)
        if sock is not None and sock.queue.qsize() >= CHECK_FROM and stopped_reading(sock.queue):
            self.drop(sid, sock)
            return
        self._send_packet(sid, pkt)

    def drop(self, sid: str, sock: Any) -> None:
        """Close a client that stopped reading, and free what was queued for it."""
        log.warning("dashboard dropped: %d packets waited for it", sock.queue.qsize())
        sock.close(wait=False, abort=True)  # no waiting for a queue that never drains; runs the disconnect
        self.eio.sockets.pop(sid, None)
        while True:
            try:
                sock.queue.get_nowait()
                sock.queue.task_done()
            except queue.Empty:  # eventlet's queue raises the standard Empty too
                break
        sock.queue.put(None)  # the writer exits once its blocked send ends (the socket's own timeout)

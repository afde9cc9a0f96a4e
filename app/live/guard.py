"""Socket.IO clients that cannot hurt the server: connections capped, a client that stops reading dropped."""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
import time
from typing import Any

from app.limits import RateLimiter

log = logging.getLogger(__name__)
# What may wait for one client. A client that reads has a packet or two waiting; a long-polling one collects
# what came between two polls. Past either bound it is not reading: it is dropped (a dashboard reconnects and
# gets the full figures). Packets are shared between clients, so this bounds what non-readers keep alive.
MAX_QUEUED_BYTES = 2 * 1024 * 1024
MAX_QUEUED = 1000
CHECK_FROM = 8  # packets waiting before the bytes are counted: a reading client costs nothing
# What one client may send. A dashboard sends a `join` on each connection and nothing else: 20 messages a second
# (bursts of 40) is far above that and far below a flood, which is cut at its first excess packet, before
# Socket.IO decodes it (each decoded message costs 40-110 µs on the loop that also serves HTTP).
MESSAGES_PER_S = 20.0
MESSAGES_BURST = 40.0
MAX_MESSAGE_BYTES = 16 * 1024  # Engine.IO's max_http_buffer_size: a `join` is some 30 bytes
# Sessions that did not connect the Socket.IO namespace yet: their own budget, never the dashboards'. Past it the
# oldest waits no more; none waits longer than PENDING_S. Bare handshakes cannot keep a dashboard out.
MAX_PENDING = 256
PENDING_S = 5.0


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
        self.pending: dict[str, float] = {}  # sid -> when its handshake came (insertion order: oldest first)
        self.connected: set[str] = set()  # sids whose Socket.IO namespace is connected: the dashboards
        self.messages = RateLimiter(round(MESSAGES_PER_S * 60), burst=MESSAGES_BURST)  # per sid
        self._connect = eio.handlers["connect"]
        self._disconnect = eio.handlers["disconnect"]
        self._message = eio.handlers["message"]
        self._send_packet = eio.send_packet
        eio.on("connect", self.connect)
        eio.on("disconnect", self.disconnect)
        eio.on("message", self.message)
        eio.send_packet = self.send_packet

    def connect(self, sid: str, environ: dict[str, Any], *args: Any) -> Any:
        """Admit the connection if the caps allow it (False refuses it: HTTP 401 before any payload)."""
        address = client_address(environ)
        stale = self._stale_pending(time.monotonic())
        for old in stale:
            self.cut(old, "no Socket.IO connect within the handshake budget")
        with self.lock:
            if len(self.connected) >= self.max_total:
                log.warning("dashboard refused: %d connections already", len(self.connected))
                return False
            if address is not None and self.per_address.get(address, 0) >= self.max_per_address:
                log.warning("dashboard refused: %d connections already from %s", self.max_per_address, address)
                return False
            self.address_of[sid] = address
            self.pending[sid] = time.monotonic()
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

    def _stale_pending(self, now: float) -> list[str]:
        """The pending sessions to drop before one more: too old, or the oldest when the budget is full."""
        with self.lock:
            stale = [sid for sid, since in self.pending.items() if now - since > PENDING_S]
            excess = len(self.pending) - len(stale) - MAX_PENDING + 1
            if excess > 0:
                stale += [sid for sid in self.pending if sid not in stale][:excess]
            for sid in stale:
                self.pending.pop(sid, None)
            return stale

    def message(self, sid: str, data: Any) -> Any:
        """Pass a client's message on to Socket.IO unless it floods, sends binary data or overfills the cap."""
        # A reader whose socket always has data never blocks, so it would never let the loop serve anyone else:
        # one yield per message keeps a flood cooperative, and lets a cut client's writer close its socket.
        self.eio.sleep(0)
        if sid not in self.address_of:
            return None  # already cut: what was still in flight is dropped unread
        if isinstance(data, bytes) or data[:1] in ("5", "6"):  # binary events and attachments: no handler wants them
            return self.cut(sid, "binary data refused")
        flooding = self.messages.take(sid) > 0
        with self.lock:
            full = False
            if data[:1] == "0" and self.pending.pop(sid, None) is not None:  # the namespace connects: a dashboard
                full = len(self.connected) >= self.max_total
                if not full:
                    self.connected.add(sid)
        if flooding:
            return self.cut(sid, f"more than {MESSAGES_PER_S:.0f} messages a second")
        if full:
            return self.cut(sid, f"{self.max_total} dashboards already")
        return self._message(sid, data)

    def cut(self, sid: str, reason: str) -> None:
        """Close a client's session at once, with one log line."""
        sock = self.eio.sockets.get(sid)
        self._forget(sid)
        if sock is None:
            return
        log.warning("socket.io client cut: %s", reason)
        self.eio.sockets.pop(sid, None)
        sock.close(wait=False, abort=True)  # runs the disconnect handlers

    def _forget(self, sid: str) -> None:
        self.messages.forget(sid)
        with self.lock:
            self.pending.pop(sid, None)
            self.connected.discard(sid)
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

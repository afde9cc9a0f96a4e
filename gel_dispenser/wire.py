"""One bounded HTTP exchange: redirects never followed, the answer read up to a cap, an overall deadline."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_ANSWER_BYTES = 64 * 1024  # a usage server's answer is a few hundred bytes; a captive portal's page is not
MAX_RETRY_AFTER_S = 900.0  # a server asking for longer is misconfigured or hostile: try again within 15 minutes
MIN_RETRY_AFTER_S = 1.0  # "Retry-After: 0" answered again and again would be a tight loop
CHUNK_BYTES = 8192

_current = threading.local()  # the deadline of the exchange running in this thread, for the connections it opens


class Failed(Exception):
    """No usable answer: `reason` is a stable phrase (logged once per failure streak), `detail` the specifics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} {detail}".strip())
        self.reason, self.detail = reason, detail


class _Deadline:
    """Cuts the exchange's socket when its time is up, so a server dripping bytes cannot hold the caller."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _cut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _cut(sock)


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also under TLS: it wakes a blocked read at once, from any thread.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watched(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _Connection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watched(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watched(self.sock)  # a kept-alive connection: no new socket
        super().request(*args, **kwargs)


class _TLSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watched(sock)  # before the TLS handshake, which a slow server could drip too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watched(self.sock)
        super().request(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


POOLS = {"http": _Pool, "https": _TLSPool}


class BoundedAdapter(HTTPAdapter):
    """requests' adapter with connections the exchange's deadline can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The usual pool manager, with our connection classes."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """An HTTP(S) proxy's manager with our connection classes too (a SOCKS proxy keeps its own)."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = POOLS
        return manager


@dataclass(frozen=True)
class Answer:
    """A server's answer: status, headers and a body of at most MAX_ANSWER_BYTES."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def error(self) -> str:
        """The server's `error`, or the start of the body: for the log."""
        payload = self.json_object() or {}
        return str(payload.get("error", self.body[:200].decode("utf-8", "replace")))

    def retry_after(self) -> float | None:
        """The seconds of a Retry-After header (uncapped), or None when absent or not a number of seconds."""
        try:
            seconds = float(self.headers.get("Retry-After", ""))
        except ValueError:
            return None
        return None if math.isnan(seconds) else max(seconds, 0.0)


def exchange(session: requests.Session, url: str, body: bytes, *, headers: dict[str, str], timeout: float,
             deadline_s: float, verify: str | bool) -> Answer:
    """POST and read the answer within `deadline_s`; Failed on a network error, a redirect or a too long answer."""
    deadline = _Deadline(deadline_s)
    _current.deadline = deadline
    deadline.start()
    try:
        resp = session.post(url, data=body, headers=headers, timeout=timeout, verify=verify, allow_redirects=False,
                            stream=True)
        try:
            if 300 <= resp.status_code < 400:
                location = resp.headers.get("Location", "")[:200]
                raise Failed("redirect not followed", f"status={resp.status_code} location={location!r}")
            data = _read_capped(resp, deadline)
        finally:
            resp.close()
    except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        if deadline.expired:
            raise Failed("deadline exceeded", f"deadline_s={deadline_s:g}") from None
        raise Failed(f"network error={type(exc).__name__}") from None
    finally:
        deadline.cancel()
        _current.deadline = None
    return Answer(resp.status_code, resp.headers, data)


def _read_capped(resp: requests.Response, deadline: _Deadline) -> bytes:
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise Failed("answer too large", f"content_length={declared} max={MAX_ANSWER_BYTES}")
    data = bytearray()
    for chunk in resp.iter_content(CHUNK_BYTES):
        data += chunk
        if len(data) > MAX_ANSWER_BYTES:
            raise Failed("answer too large", f"over={MAX_ANSWER_BYTES}")
        if deadline.expired or time.monotonic() > deadline.at:
            raise Failed("deadline exceeded")
    if deadline.expired:
        raise Failed("deadline exceeded")
    return bytes(data)

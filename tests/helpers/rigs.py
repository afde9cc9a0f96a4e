"""Shared rigs: a dispenser on gpiozero mock pins, a Socket.IO listener, a misbehaving HTTP proxy."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import socketio as sio_lib
from gpiozero.pins.mock import MockFactory, MockPWMPin

from devkit.servers import wait_for
from gel_dispenser.config import Config
from gel_dispenser.device import Dispenser
from gel_dispenser.sender import Sender
from gel_dispenser.spool import Spool, new_event
from tests.helpers.config import TOKENS

TOKEN = TOKENS["entree"]


def make_config(tmp_path: Path, **changes) -> Config:
    """A fast config: short strokes, no cooldown unless asked, spool in tmp_path."""
    base = Config(id="entree", server_url="http://127.0.0.1:9", token=TOKEN, sensor_pin=17, servo_pin=18,
                  dose_ml=1.5, spool=tmp_path / "spool.db", hold_s=0.05, return_s=0.02, min_interval_s=0.0,
                  bounce_s=0.0, stuck_after_s=30.0, heartbeat_s=60.0, timeout_s=2.0, backoff_base_s=0.1,
                  backoff_max_s=0.5, auth_retry_s=0.5)
    return dataclasses.replace(base, **changes)


def spooled(tmp_path: Path, url: str, doses: int = 3, clock: Callable[[], float] = time.time,
            **changes) -> tuple[Sender, Spool]:
    """A sender (not started, reading `clock`) for `url` on a spool holding `doses` doses of 1.5 ml."""
    cfg = make_config(tmp_path, server_url=url, **changes)
    spool = Spool(cfg.spool)
    for _ in range(doses):
        spool.add(new_event(1.5))
    return Sender(cfg, spool, clock=clock), spool


class Rig:
    """A Dispenser on mock pins with its spool, and a hand to put in front of the sensor."""

    def __init__(self, cfg: Config, wake=lambda: None, refill=lambda: None, spool: Spool | None = None):
        self.cfg = cfg
        self.factory = MockFactory(pin_class=MockPWMPin)
        self.own_spool = spool is None
        self.spool = spool or Spool(cfg.spool)
        self.dispenser = Dispenser(cfg, self.spool, wake=wake, refill=refill, pin_factory=self.factory)
        self.servo_pin = self.dispenser.servo.pwm_device.pin
        # Startup parks the arm at rest then detaches it; wait for that so each test starts idle.
        wait_for(lambda: len(self.servo_pin.states) >= 3 and self.dispenser.servo.value is None, 5,
                 message="servo parked")
        self.servo_pin.clear_states()

    def hand(self, present: bool) -> None:
        """Put a hand in front of the sensor (or take it away), respecting active-low modules."""
        pin = self.dispenser.sensor.pin
        if present == self.cfg.sensor_active_low:
            pin.drive_low()
        else:
            pin.drive_high()

    def wait_idle(self, doses: int) -> None:
        """Wait until `doses` strokes are complete and the servo is detached again."""
        d = self.dispenser
        wait_for(lambda: d.doses >= doses and not d.busy and d.servo.value is None, 5, message=f"{doses} doses")

    def angles(self) -> list[float]:
        """Duty cycles the servo pin went through since the last clear (0 = detached)."""
        return [round(s.state, 4) for s in self.servo_pin.states][1:]

    def close(self) -> None:
        """Release the pins and the spool."""
        self.dispenser.close()
        if self.own_spool:
            self.spool.close()
        self.factory.reset()


class Listener:
    """A real python-socketio client that keeps every `donnees_utilisation` it receives."""

    def __init__(self, url: str):
        self.received: list[dict] = []
        self.got = threading.Event()
        self.client = sio_lib.Client(reconnection=False)
        self.client.on("donnees_utilisation", self._on)
        self.client.connect(url, transports=["websocket"], wait_timeout=10)

    def _on(self, payload: dict) -> None:
        self.received.append(payload)
        self.got.set()

    def close(self) -> None:
        self.client.disconnect()


class Proxy:
    """A tiny HTTP proxy, one request per connection: `hang` (never answers), `drop` (forwards, then loses the
    answer), `slow` (forwards; every other answer comes `delay` seconds late, the others soon)."""

    def __init__(self, upstream_port: int, mode: str, delay: float = 0.0):
        self.upstream_port, self.mode, self.delay = upstream_port, mode, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed = threading.Event()
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = self._read_message(conn)
            if not request:
                return
            self.requests += 1
            late = self.requests % 2 == 1  # every other answer arrives after `delay`, so timeouts surely happen
            if self.mode == "hang":
                self.closed.wait()  # accepts, reads, never answers
                return
            head, _, body = request.partition(b"\r\n\r\n")
            head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:"))
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as up:
                up.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
                answer = self._read_message(up)
            if self.mode == "drop":
                return  # the server committed; the dispenser never hears of it
            if self.mode == "slow":
                self.closed.wait(self.delay if late else random.uniform(0, self.delay / 4))
            head, _, body = answer.partition(b"\r\n\r\n")
            head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:"))
            with contextlib.suppress(OSError):  # the dispenser may have given up waiting: it will retry
                conn.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)

    def close(self) -> None:
        """Stop accepting and release every held connection."""
        self.closed.set()
        self.listener.close()

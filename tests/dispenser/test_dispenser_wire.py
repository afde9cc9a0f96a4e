"""What the dispenser puts on the wire: Retry-After honoured, a private CA trusted, doses dated whatever its clock."""

from __future__ import annotations

import csv
import io
import json
import logging
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from gpiozero.pins.mock import MockFactory, MockPWMPin

from devkit.servers import ROOT, wait_for
from gel_dispenser.device import Dispenser
from gel_dispenser.sender import Sender
from gel_dispenser.spool import BOOT_ID, Spool, new_event
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS
from tests.helpers.rigs import make_config

DAY = 86400.0
MS = 0.002  # the export gives milliseconds; age_s and the clock header are rounded to them too


class Stub(BaseHTTPRequestHandler):
    """A tiny HTTP server: `script(batch)` answers each POST of events; every other POST gets a 200."""

    script: Callable[[list[dict]], tuple[int, dict[str, str]]] = staticmethod(lambda batch: (200, {}))
    posts: list[tuple[float, int, list[dict], dict[str, str]]] = []  # (monotonic, status, batch, headers)
    accepted: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self.path.endswith("/mettre_a_jour_donnees"):
            return self.answer(200, {}, {"status": "ok"})
        batch = json.loads(body)
        status, headers = self.script(batch)
        self.posts.append((time.monotonic(), status, batch, dict(self.headers)))
        if status == 200:
            self.accepted.extend(e["event_id"] for e in batch)
        return self.answer(status, headers, {"accepted": len(batch), "duplicates": 0} if status == 200 else
                           {"error": "slow down"})

    def answer(self, status: int, headers: dict[str, str], payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[Callable[..., str]]:
    """stub(script, tls=(cert, key)) -> the URL of a running Stub, shut down at teardown."""
    servers: list[ThreadingHTTPServer] = []

    def start(script: Callable, tls: tuple[Path, Path] | None = None) -> str:
        Stub.script, Stub.posts, Stub.accepted = staticmethod(script), [], []
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        return f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_429_waits_for_retry_after_and_loses_nothing(stub, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    answers = iter([(429, {"Retry-After": "1"})])
    url = stub(lambda batch: next(answers, (200, {})))
    cfg = make_config(tmp_path, server_url=url, backoff_base_s=0.05, backoff_max_s=0.1)  # our own retry: soon
    with Spool(cfg.spool) as spool:
        events = [new_event(1.5) for _ in range(3)]
        spool.add(events[0])
        sender = Sender(cfg, spool).start()
        try:
            # Until the sender has logged the 429 (with the backlog it had then), not only until the stub got it.
            wait_for(lambda: "status=429" in caplog.text, 10, message="the first POST deferred")
            spool.add(events[1])  # doses go on while the server holds us off
            spool.add(events[2])
            sender.wake()
            assert sender.wait_empty(10)  # a flush skips our backoff, not the server's Retry-After
        finally:
            sender.stop()
    (first_at, first_status, first_batch, _), (then_at, then_status, _, _) = Stub.posts
    assert (first_status, then_status, len(Stub.posts)) == (429, 200, 2)
    assert then_at - first_at >= 1.0
    assert [e["event_id"] for e in first_batch] == [events[0]["event_id"]]
    assert Stub.accepted == [e["event_id"] for e in events]  # each once, in order
    assert "delivery deferred dispenser=entree status=429 events=1 backlog=1 retry_after=1.0s" in caplog.text


def test_ca_file_trusts_a_private_ca(stub, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    pki = tmp_path / "pki"
    for args in (["ca", str(pki)], ["server", str(pki), "127.0.0.1"]):
        subprocess.run(["bash", str(ROOT / "deploy" / "lan-ca.sh"), *args], check=True, capture_output=True,
                       timeout=60)
    url = stub(lambda batch: (200, {}), tls=(pki / "127.0.0.1.crt", pki / "127.0.0.1.key"))
    event = new_event(1.5)
    for ca_file, delivered in ((None, False), (pki / "ca.crt", True)):
        cfg = make_config(tmp_path, server_url=url, ca_file=ca_file, spool=tmp_path / f"spool-{delivered}.db")
        with Spool(cfg.spool) as spool:
            spool.add(event)
            sender = Sender(cfg, spool).start()
            try:
                assert sender.wait_empty(5) is delivered
            finally:
                sender.stop()
    assert "delivery failed dispenser=entree network error=SSLError" in caplog.text  # unknown CA: refused
    assert Stub.accepted == [event["event_id"]]


def recorded_times(url: str) -> dict[str, float]:
    """event_id -> the time the server recorded for it, from the CSV export."""
    resp = requests.get(url + "/api/export.csv", params={"dispenser": "entree"}, timeout=10)
    assert resp.status_code == 200
    return {row["event_id"]: datetime.fromisoformat(row["timestamp"]).timestamp()
            for row in csv.DictReader(io.StringIO(resp.text))}


@pytest.mark.parametrize("clock_name, clock", [
    ("3 days behind", lambda: time.time() - 3 * DAY),
    ("1970 after a power cut", time.monotonic),  # no RTC, no NTP yet: seconds since boot
])
def test_doses_are_recorded_at_the_true_time_whatever_the_pi_clock(server, tmp_path, clock_name, clock):
    cfg = make_config(tmp_path, server_url=server.url)
    factory = MockFactory(pin_class=MockPWMPin)
    with Spool(cfg.spool) as spool:
        # A dose of this boot made 30 s ago, while the server was out of reach: its monotonic age dates it.
        spooled = new_event(1.5, now=clock() - 30)
        spooled_at = time.time() - 30
        spool.add(spooled, time.monotonic() - 30, BOOT_ID)
        sender = Sender(cfg, spool, clock=clock)
        try:
            with Dispenser(cfg, spool, wake=sender.wake, pin_factory=factory, clock=clock) as unit:
                sender.start()
                before = time.time()
                unit.sensor.pin.drive_low()  # a hand
                assert unit.wait_until(lambda: unit.doses == 1 and not unit.busy, 10)
                unit.sensor.pin.drive_high()
            assert sender.wait_empty(10)
            delivered = time.time()
        finally:
            sender.stop()
            factory.reset()
    # The server dates a dose `age_s` before it received it: from the dose itself to the end of the delivery,
    # whatever the delivery took (MS: the export's milliseconds).
    recorded = recorded_times(server.url)
    assert spooled_at - MS <= recorded.pop(spooled["event_id"]) <= delivered - 30 + MS, clock_name
    (dosed_at,) = recorded.values()
    assert before - MS <= dosed_at <= delivered + MS, clock_name


def test_a_dose_from_an_earlier_boot_is_corrected_by_the_clock_offset(server, tmp_path):
    clock = lambda: time.time() - 3 * DAY  # noqa: E731 (the Pi's wall clock, wrong by the same amount all along)
    cfg = make_config(tmp_path, server_url=server.url)
    before = time.time()
    with Spool(cfg.spool) as spool:
        earlier = new_event(1.5, now=clock() - 600)  # ten minutes ago, before a reboot
        spool.add(earlier, 42.0, "an-earlier-boot")  # its monotonic reading means nothing now
        sender = Sender(cfg, spool, clock=clock).start()
        try:
            assert sender.wait_empty(10)
            delivered = time.time()
        finally:
            sender.stop()
    # Corrected by (server clock - Pi clock) at the send: at most the delivery's duration late, never early.
    assert before - 600 - MS <= recorded_times(server.url)[earlier["event_id"]] <= delivered - 600 + MS


@pytest.mark.parametrize("event, headers, error", [
    ({"gel_used": 1.5, "age_s": -1}, {}, "age_s must be a number from 0 to"),
    ({"gel_used": 1.5, "age_s": 11 * 365 * DAY}, {}, "age_s must be a number from 0 to"),
    ({"gel_used": 1.5, "age_s": "5"}, {}, "age_s must be a number"),
    ({"gel_used": 1.5}, {"X-Dispenser-Clock": "yesterday"}, "X-Dispenser-Clock must be"),
    ({"gel_used": 1.5}, {"X-Dispenser-Clock": "nan"}, "X-Dispenser-Clock must be"),
])
def test_the_server_refuses_a_bad_age_or_clock(server, event, headers, error):
    resp = requests.post(server.url + "/mettre_a_jour_donnees", json=event, timeout=10,
                         headers={**bearer(TOKENS["entree"]), **headers})
    assert resp.status_code == 400 and error in resp.json()["error"]

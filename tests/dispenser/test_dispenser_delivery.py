"""dispenser.py delivery against a real server process: retries, quarantine, 401, hangs, heartbeats, the CLI."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from devkit.servers import ROOT, free_port, reaped, stop_process, wait_for
from gel_dispenser import __version__
from gel_dispenser.config import Config
from gel_dispenser.sender import Sender
from gel_dispenser.spool import Spool, new_event
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS, config_text
from tests.helpers.rigs import Rig, make_config

TOKEN = TOKENS["entree"]
FAST = {"hold_s": 0.05, "return_s": 0.02, "min_interval_s": 0.1, "backoff_base_s": 0.2, "backoff_max_s": 1.0,
        "auth_retry_s": 0.5, "timeout_s": 2.0, "shutdown_flush_s": 0.5, "log_level": "DEBUG"}


def usage(url: str) -> dict:
    """GET /obtenir_donnees_utilisation."""
    return requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()


def entry(url: str, ident: str = "entree") -> dict:
    """One dispenser's entry in the GET payload."""
    return next(d for d in usage(url)["dispensers"] if d["id"] == ident)


class Station:
    """A dispenser on mock pins plus its sender, as `python dispenser.py` wires them."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.spool = Spool(cfg.spool)
        self.sender = Sender(cfg, self.spool).start()
        self.rig = Rig(cfg, wake=self.sender.wake, spool=self.spool)

    def dose(self) -> None:
        """One hand in, one stroke, hand out."""
        done = self.rig.dispenser.doses
        self.rig.hand(True)
        self.rig.wait_idle(done + 1)
        self.rig.hand(False)

    def close(self) -> None:
        """Stop in the same order as main(): pins, sender, spool."""
        self.rig.close()
        self.sender.stop()
        self.spool.close()


@pytest.fixture
def station(tmp_path) -> Iterator:
    """station(**config changes) -> a running Station, closed at teardown."""
    made: list[Station] = []

    def make(**changes) -> Station:
        made.append(Station(make_config(tmp_path, **changes)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def dispenser_config(tmp_path: Path, server_url: str, **changes) -> Path:
    """A config.toml with only a [dispenser] table (fast timings), for the subprocess tests."""
    values = {"id": "entree", "server_url": server_url, "token": TOKEN, "sensor_pin": 17, "servo_pin": 18,
              "dose_ml": 1.5, "spool": "spool.db", **FAST, **changes}
    lines = ["[dispenser]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path = tmp_path / "dispenser.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_dispenser(config: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """`python dispenser.py --config CONFIG ARGS...`, output captured."""
    return subprocess.run([sys.executable, str(ROOT / "dispenser.py"), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=config.parent)


def test_simulate_hands_5_delivers_exactly_5(server, tmp_path):
    config = dispenser_config(tmp_path, server.url)
    done = run_dispenser(config, "--simulate", "--hands", "5")
    assert done.returncode == 0, done.stderr
    payload = usage(server.url)
    assert (payload["hands_detected"], payload["gel_used"]) == (5, 7.5)
    assert done.stderr.count(" dose dispenser=entree ") == 5
    assert TOKEN not in done.stdout + done.stderr  # DEBUG level: urllib3 logs every request too
    assert Spool(tmp_path / "spool.db").backlog() == 0


def test_exit_3_when_unreachable_then_a_restart_delivers_the_spool(server, tmp_path):
    config = dispenser_config(tmp_path, f"http://127.0.0.1:{free_port()}")
    done = run_dispenser(config, "--simulate", "--hands", "2", "--flush-timeout", "1")
    assert done.returncode == 3, done.stderr
    assert "delivery failed dispenser=entree network error=ConnectionError" in done.stderr
    spool = Spool(tmp_path / "spool.db")
    assert spool.backlog() == 2
    assert usage(server.url)["hands_detected"] == 0

    flushed = run_dispenser(config, "--flush", "--server-url", server.url)
    assert flushed.returncode == 0, flushed.stderr
    assert spool.backlog() == 0
    assert usage(server.url)["hands_detected"] == 2
    spool.close()


@pytest.mark.slow  # a real dispenser process, or seconds of timeouts
def test_sigterm_stops_a_simulated_dispenser_cleanly(tmp_path):
    config = dispenser_config(tmp_path, f"http://127.0.0.1:{free_port()}")
    log_path = tmp_path / "dispenser.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "dispenser.py"), "--config", str(config), "--simulate",
                                 "--mean-interval", "0.2"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    with reaped(proc):
        wait_for(lambda: log_path.read_text().count(" dose dispenser=") >= 2, 15, message="two simulated doses")
        assert stop_process(proc, signal.SIGTERM, 10) == 0
    servo_lines = [line.split(" servo dispenser=entree ")[1] for line in log_path.read_text().splitlines()
                   if " servo dispenser=entree " in line]
    assert servo_lines[-2:] == ["angle=0.0", "detached"]  # last word: at rest, no pulses
    assert "stopped dispenser=entree servo=rest" in log_path.read_text()


def test_server_down_then_up_retries_with_backoff_and_counts_once(server, station, caplog):
    caplog.set_level(logging.DEBUG, logger="dispenser")  # a streak's retries after its first are logged at DEBUG
    server.stop()
    unit = station(server_url=server.url)
    unit.dose()
    unit.dose()  # dispensing goes on while the server is down
    wait_for(lambda: caplog.text.count("delivery failed dispenser=entree") >= 2, 10, message="two failed attempts")
    pending = [json.loads(body) for _, _, body in unit.spool.pending(10)]
    assert len(pending) == 2

    server.start()
    wait_for(lambda: unit.spool.backlog() == 0, 10, message="delivered after restart")
    assert usage(server.url)["hands_detected"] == 2
    # A retry of what was already delivered (say the 200 got lost) must not count again.
    again = requests.post(server.url + "/mettre_a_jour_donnees", json=pending,
                          headers=bearer(TOKEN), timeout=10)
    assert (again.status_code, again.json()["duplicates"]) == (200, 2)
    assert (usage(server.url)["hands_detected"], usage(server.url)["gel_used"]) == (2, 3.0)


def test_a_bad_event_is_quarantined_and_the_good_ones_delivered(server, tmp_path, caplog):
    cfg = make_config(tmp_path, server_url=server.url, batch_size=10)
    spool = Spool(cfg.spool)
    good = [new_event(1.5) for _ in range(3)]
    bad = dict(new_event(1.5), gel_used=-4)
    for event in (good[0], bad, good[1], good[2]):
        spool.add(event)
    sender = Sender(cfg, spool).start()
    try:
        wait_for(lambda: spool.backlog() == 0, 10, message="spool drained")
        (event_id, body, status, error), = spool.quarantined()
        assert (event_id, status) == (bad["event_id"], 400)
        assert "gel_used" in error and json.loads(body) == bad
        assert usage(server.url)["hands_detected"] == 3
        assert f"quarantined dispenser=entree event_id={bad['event_id']} status=400" in caplog.text
    finally:
        sender.stop()
        spool.close()


def test_wrong_token_is_logged_kept_and_heals_when_the_server_learns_it(server_factory, station, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "server.toml"
    path.write_text(config_text(async_mode="eventlet").replace(TOKEN, "token-entree-rotated"), encoding="utf-8")
    srv = server_factory(config=path)
    unit = station(server_url=srv.url)
    unit.dose()
    wait_for(lambda: "refused dispenser=entree status=401" in caplog.text, 10, message="401 logged")
    assert [r.levelname for r in caplog.records if "status=401" in r.message][0] == "ERROR"
    assert unit.spool.backlog() == 1 and unit.spool.quarantined() == []

    path.write_text(config_text(async_mode="eventlet"), encoding="utf-8")  # the server admin fixes the token
    srv.stop()
    srv.start()
    wait_for(lambda: unit.spool.backlog() == 0, 10, message="delivered with the right token")
    assert usage(srv.url)["hands_detected"] == 1
    assert TOKEN not in caplog.text


class SilentListener:
    """A TCP server that accepts connections, reads them and never answers a byte; counts the ones the peer ended."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = self.ended = 0
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:  # closed at teardown
                return
            with self.lock:
                self.held.append(conn)
                self.accepted += 1
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        with self.lock:
            self.ended += 1  # the client gave up (its timeout), or teardown closed it

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self.sock.close()
        with self.lock:
            for conn in self.held:
                with contextlib.suppress(OSError):  # wakes its reader and tells the client at once
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()


@pytest.fixture
def silent_listener() -> Iterator[SilentListener]:
    """A server that never answers, closed at teardown."""
    listener = SilentListener()
    yield listener
    listener.close()


@pytest.mark.slow  # a real dispenser process, or seconds of timeouts
def test_a_server_that_never_answers_does_not_stop_dispensing(station, silent_listener, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    # The sender's first request (the start heartbeat) hangs for timeout_s; four strokes take about 0.3 s, and a
    # 4 s timeout leaves a slow machine room for them (a stroke that waited would end only after the timeout).
    unit = station(server_url=silent_listener.url, timeout_s=4.0, heartbeat_s=600.0)
    wait_for(lambda: silent_listener.accepted == 1, 10, message="the sender's first request")
    for _ in range(4):
        unit.dose()
        # The stroke ended while the sender still waited on its first request: a stroke never waits for the network.
        assert (silent_listener.accepted, silent_listener.ended) == (1, 0)
        assert "ReadTimeout" not in caplog.text
    assert unit.spool.backlog() == 4
    wait_for(lambda: "network error=ReadTimeout" in caplog.text, 30, message="the sender timed out")
    unit.dose()
    assert unit.spool.backlog() == 5


class FakeServer(BaseHTTPRequestHandler):
    """503 once, 413 for batches above two events, 200 otherwise; records what it accepted."""

    accepted: list[str] = []
    calls: list[tuple[int, int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self.path.endswith("/mettre_a_jour_donnees"):
            return self.answer(200, {"status": "ok"})
        batch = json.loads(body)
        status = 503 if not self.calls else 413 if len(batch) > 2 else 200
        self.calls.append((len(batch), status))
        if status == 200:
            self.accepted.extend(e["event_id"] for e in batch)
        return self.answer(status, {"accepted": len(batch), "duplicates": 0} if status == 200 else {"error": "no"})

    def answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_5xx_backs_off_and_413_splits_the_batch(tmp_path):
    FakeServer.accepted, FakeServer.calls = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    cfg = make_config(tmp_path, server_url=f"http://127.0.0.1:{httpd.server_address[1]}", batch_size=10)
    spool = Spool(cfg.spool)
    events = [new_event(1.5) for _ in range(5)]
    for event in events:
        spool.add(event)
    sender = Sender(cfg, spool).start()
    try:
        wait_for(lambda: spool.backlog() == 0, 10, message="delivered in small batches")
        assert FakeServer.accepted == [e["event_id"] for e in events]  # each once, in order
        assert FakeServer.calls[0] == (5, 503) and (5, 413) in FakeServer.calls
        assert spool.quarantined() == []
    finally:
        sender.stop()
        spool.close()
        httpd.shutdown()
        httpd.server_close()


def test_heartbeat_reports_version_backlog_and_missed_even_when_idle_and_refills_are_sent(server, tmp_path):
    cfg = make_config(tmp_path, server_url=server.url, heartbeat_s=0.2)
    spool = Spool(cfg.spool)
    spool.bump("missed", 7)
    sender = Sender(cfg, spool).start()
    try:
        first = wait_for(lambda: entry(server.url)["missed"] == 7 and entry(server.url), 10, message="heartbeat")
        assert (first["version"], first["backlog"], first["online"]) == (__version__, 0, True)
        assert first["last_seen"] is not None
        spool.bump("missed", 2)  # no event, no wake-up: only the periodic heartbeat can carry this
        wait_for(lambda: entry(server.url)["missed"] == 9, 5, message="next heartbeat")
        assert entry(server.url)["refilled_at"] is None
        sender.request_refill()  # what the refill button does
        wait_for(lambda: entry(server.url)["refilled_at"], 5, message="refill reported")
        wait_for(lambda: spool.counter("refill_pending") == 0, 5, message="refill no longer pending")
    finally:
        sender.stop()
        spool.close()


class Demo:
    """`tools/demo.py` running on the shipped config, on a free port, its stdout lines collected."""

    def __init__(self, tmp_path: Path):
        shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
        self.port = free_port()
        config = tmp_path / "config.toml"
        config.write_text(shipped.replace("port = 5000", f"port = {self.port}"), encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "demo.py"), "--config", str(config),
                                      "--mean-interval", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, cwd=tmp_path)
        self.lines: list[str] = []
        self.children: list[int] = []
        threading.Thread(target=_read_lines, args=(self.proc, self.lines), daemon=True).start()

    def url(self) -> str:
        """The URL line, once printed."""
        return wait_for(lambda: next((x for x in self.lines if x.startswith("http://")), None), 40,
                        message="URL line")

    def close(self) -> None:
        """Kill whatever is left of the demo and its children."""
        stop_process(self.proc, signal.SIGKILL)
        for pid in self.children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo, killed with its children after the test whatever happened."""
    running = Demo(tmp_path)
    yield running
    running.close()


def test_demo_starts_server_and_dispensers_and_stops_them_all(demo):
    url = demo.url()
    assert url == f"http://127.0.0.1:{demo.port}/"
    demo.children = _children(demo.proc.pid)
    assert len(demo.children) == 4  # the server and one dispenser per [[server.dispensers]]
    wait_for(lambda: usage(url.rstrip("/"))["hands_detected"] >= 3, 30, message="simulated hands")
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(30) == 0
    assert [pid for pid in demo.children if _alive(pid)] == []


def test_demo_shows_one_line_per_dose_and_logs_everything_to_the_file_it_names(demo):
    demo.url()
    named = wait_for(lambda: next((x for x in demo.lines if x.startswith("logs: ")), None), 10, message="log line")
    log_file = Path(named.removeprefix("logs: "))
    wait_for(lambda: sum(" dose " in x for x in demo.lines) >= 4, 30, message="dose lines")
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(30) == 0
    doses = [x for x in demo.lines if re.fullmatch(r"\d\d:\d\d:\d\d dose \S+ [\d.]+ ml", x)]
    others = [x for x in demo.lines if x not in doses and not x.startswith(("http://", "logs: "))]
    assert len(others) <= 1, others  # the one banner line; never a servo or delivery line
    logged = log_file.read_text(encoding="utf-8")
    assert logged.count(" INFO dispenser dose dispenser=") == len(doses)  # the whole log, each dose shown once
    assert "level=INFO logger=app" in logged and " INFO dispenser delivered dispenser=" in logged


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux only")
def test_demo_killed_outright_leaves_no_orphans(demo):
    demo.url()
    demo.children = _children(demo.proc.pid)
    assert len(demo.children) == 4
    demo.proc.kill()  # SIGKILL: the demo cannot stop its children itself
    demo.proc.wait(10)
    wait_for(lambda: not any(_alive(pid) for pid in demo.children), 20, message="children gone with the demo")


def _read_lines(proc: subprocess.Popen, lines: list[str]) -> None:
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

"""A dispenser dosing while the server is down, hanging, losing answers, slow or flapping: every dose counted once."""

from __future__ import annotations

import csv
import io
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devkit.servers import ROOT, ServerProcess, free_port, wait_for
from tests.helpers.config import TOKENS
from tests.helpers.rigs import Proxy

pytestmark = pytest.mark.slow  # real server and dispenser processes

DISPENSER = "entree"


def _config(tmp_path: Path, url: str, name: str = "dispenser", **extra) -> Path:
    """A [dispenser] table for fast tests: short strokes, short timeouts, quick capped backoff."""
    values = {"id": DISPENSER, "server_url": url, "token": TOKENS[DISPENSER], "sensor_pin": 17, "servo_pin": 18,
              "dose_ml": 1.5, "spool": str(tmp_path / f"{name}-spool.db"), "hold_s": 0.05, "return_s": 0.05,
              "min_interval_s": 0.0, "max_per_minute": 10000, "timeout_s": 1.0, "backoff_base_s": 0.1,
              "backoff_max_s": 0.5, "heartbeat_s": 3600.0, "shutdown_flush_s": 0.0, "log_level": "INFO"} | extra
    lines = ["[dispenser]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in values.items()]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _dispenser(cfg: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "dispenser.py"), "--config", str(cfg), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _stored_ids(url: str) -> list[str]:
    """Every event_id the server stored for DISPENSER (repeats included)."""
    r = requests.get(url + "/api/export.csv", params={"dispenser": DISPENSER}, timeout=30)
    assert r.status_code == 200, r.text
    return [row["event_id"] for row in csv.DictReader(io.StringIO(r.text))]


def _assert_exactly(url: str, doses: int) -> None:
    ids = _stored_ids(url)
    assert len(ids) == len(set(ids)) == doses, f"{len(ids)} rows, {len(set(ids))} distinct, {doses} doses"
    data = requests.get(url + "/obtenir_donnees_utilisation", params={"dispenser": DISPENSER}, timeout=10).json()
    assert data["hands_detected"] == doses and round(data["gel_used"] * 1000) == 1500 * doses


def _backlog(spool: Path) -> int:
    if not spool.exists():
        return 0
    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


@pytest.fixture
def eventlet_server(server_factory) -> ServerProcess:
    """A real server process (eventlet)."""
    return server_factory(async_mode="eventlet")


def test_server_down_then_flush_delivers_once(eventlet_server, tmp_path) -> None:
    """Doses while nothing listens stay spooled (exit 3); the flush once the server is reachable counts each once."""
    cfg = _config(tmp_path, f"http://127.0.0.1:{free_port()}")
    down = _dispenser(cfg, "--simulate", "--hands", "6", "--flush-timeout", "1")
    assert down.returncode == 3, down.stderr[-2000:]
    assert _backlog(tmp_path / "dispenser-spool.db") == 6
    up = _dispenser(cfg, "--flush", "--flush-timeout", "30", "--server-url", eventlet_server.url)
    assert up.returncode == 0, up.stderr[-2000:]
    _assert_exactly(eventlet_server.url, 6)


@pytest.mark.parametrize("mode", ["hang", "drop"])
def test_hanging_or_lost_answers_then_flush_delivers_once(eventlet_server, tmp_path, mode) -> None:
    """A listener that never answers, or answers lost after the commit: the retry on a good link counts once."""
    proxy = Proxy(eventlet_server.port, mode)
    try:
        cfg = _config(tmp_path, proxy.url)
        stuck = _dispenser(cfg, "--simulate", "--hands", "5", "--flush-timeout", "2")
        assert stuck.returncode == 3, stuck.stderr[-2000:]
        assert proxy.requests > 0
        assert _backlog(tmp_path / "dispenser-spool.db") == 5
    finally:
        proxy.close()
    if mode == "drop":  # the server already has them all, the dispenser does not know
        assert len(_stored_ids(eventlet_server.url)) == 5
    flushed = _dispenser(cfg, "--flush", "--flush-timeout", "30", "--server-url", eventlet_server.url)
    assert flushed.returncode == 0, flushed.stderr[-2000:]
    _assert_exactly(eventlet_server.url, 5)


def test_slow_server_answers_after_timeouts_counts_once(eventlet_server, tmp_path) -> None:
    """Every other answer 1.8 s late against a 1 s client timeout: retries of committed batches never double."""
    proxy = Proxy(eventlet_server.port, "slow", delay=1.8)
    try:
        cfg = _config(tmp_path, proxy.url, batch_size=3, min_interval_s=0.05)
        slow = _dispenser(cfg, "--simulate", "--hands", "12", "--flush-timeout", "60")
        assert slow.returncode == 0, slow.stderr[-2000:]
    finally:
        proxy.close()
    assert "delivery failed" in slow.stderr or "delivery failed" in slow.stdout, "no answer was ever late"
    _assert_exactly(eventlet_server.url, 12)


def _last_seq(spool: Path) -> int:
    """How many events the dispenser ever spooled (its AUTOINCREMENT counter): the doses it gave."""
    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return row[0] if row else 0


def _spooled_after(spool: Path, seq: int) -> list[str]:
    """event_ids of doses spooled after `seq` and not delivered yet."""
    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5) as db:
        return [r[0] for r in db.execute("SELECT event_id FROM events WHERE seq > ? ORDER BY seq", (seq,))]


def _hands(url: str) -> int:
    return requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()["hands_detected"]


def test_flapping_server_counts_every_dose_once(server_factory, write_config, tmp_path) -> None:
    """The server is stopped (SIGTERM or kill -9) and restarted on its port four times while the dispenser doses."""
    config = write_config(async_mode="eventlet")
    current = server_factory(config)
    port = current.port
    cfg = _config(tmp_path, current.url, min_interval_s=0.15)
    spool = tmp_path / "dispenser-spool.db"
    # More presences than the flaps need: the dispenser keeps dosing until SIGTERM, then delivers its spool.
    proc = subprocess.Popen([sys.executable, str(ROOT / "dispenser.py"), "--config", str(cfg), "--simulate",
                             "--hands", "100000", "--flush-timeout", "60"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    flaps, dosed_while_down = 0, []
    try:
        for flap in range(4):
            seen = _hands(current.url)
            wait_for(lambda s=seen, c=current: _hands(c.url) > s, 30, message="a delivery while the server is up")
            current.kill() if flap % 2 else current.stop()
            down_from = _last_seq(spool)  # read once the server is gone: later doses cannot be delivered yet
            dosed = wait_for(lambda d=down_from: _spooled_after(spool, d), 30, message="a dose spooled while down")
            assert proc.poll() is None, "the dispenser stopped before the flaps were done"
            dosed_while_down.append(dosed[0])
            flaps += 1
            current = ServerProcess(config, port=port).start()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out[-3000:]
        assert flaps == 4  # every flap happened with the dispenser running and dosing
        doses = _last_seq(spool)
        assert set(dosed_while_down) <= set(_stored_ids(current.url)), "a dose given while down was lost"
        _assert_exactly(current.url, doses)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        current.stop()

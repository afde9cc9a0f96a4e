"""dispenser.py promises not covered elsewhere: cooldown and rate cap that end, `busy`, a spool that cannot be
written, the SIGTERM flush, exit 2 without GPIO, `--version`, the refill button end to end (gpiozero mock pins)."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from gpiozero.pins.mock import MockFactory, MockPWMPin

from devkit.servers import ROOT, ServerProcess, free_port, reaped, stop_process, wait_for
from gel_dispenser import __version__
from gel_dispenser.device import Dispenser
from gel_dispenser.sender import Sender
from gel_dispenser.spool import Spool, new_event
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS
from tests.helpers.rigs import Rig, make_config

TOKEN = TOKENS["entree"]


class Clock:
    """A monotonic clock the test moves by hand: a minute of rate cap passes without a minute of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def rig(tmp_path) -> Iterator:
    """rig(**config changes) -> (a started Rig on a hand-moved clock, the clock); closed at teardown."""
    made: list[Rig] = []

    def make(**changes) -> tuple[Rig, Clock]:
        made.append(Rig(make_config(tmp_path, **changes)))
        clock = Clock()
        made[-1].dispenser.monotonic = clock
        return made[-1], clock

    yield make
    for r in made:
        r.close()


def present(r: Rig, doses: int | None = None, missed: int | None = None) -> None:
    """One presence: a hand arrives, then leaves once its dose is done or its miss counted."""
    r.hand(True)
    if doses is not None:
        r.wait_idle(doses)
    if missed is not None:
        wait_for(lambda: r.spool.counter("missed") == missed, 5, message=f"{missed} missed")
    r.hand(False)


def test_a_cooldown_ends(rig, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    r, clock = rig(min_interval_s=30.0)
    present(r, doses=1)
    assert r.dispenser.ready_in() == 30.0
    clock.advance(29.9)
    present(r, missed=1)  # still cooling down
    assert r.dispenser.ready_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert r.dispenser.ready_in() == 0.0
    present(r, doses=2)  # the cooldown is over
    assert r.spool.backlog() == 2 and r.spool.counter("missed") == 1
    assert "reason=cooldown" in caplog.text


def test_a_rate_cap_frees_up_after_its_minute(rig, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    r, clock = rig(max_per_minute=3)
    for n in (1, 2, 3):  # at 0, 10 and 20 s
        present(r, doses=n)
        clock.advance(10)
    present(r, missed=1)  # at 30 s: three doses in the last minute
    assert r.dispenser.ready_in() == 30.0  # when the first one leaves the window
    clock.advance(29.9)
    present(r, missed=2)
    clock.advance(0.1)  # 60 s after the first dose
    present(r, doses=4)
    present(r, missed=3)  # 10, 20 and 60 s are in the window again
    assert r.dispenser.ready_in() == 10.0
    clock.advance(10)
    present(r, doses=5)
    assert caplog.text.count("reason=rate_cap") == 3 and r.spool.backlog() == 5


def test_a_hand_during_a_stroke_is_refused_as_busy(rig, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    # A long press, so that the second hand surely comes during it; misses are counted once the stroke is over.
    r, _ = rig(hold_s=3.0)
    r.hand(True)
    wait_for(lambda: r.dispenser.busy, 5, message="stroke running")
    r.hand(False)
    r.hand(True)
    assert r.dispenser.busy and r.dispenser.doses == 0  # still pressing: this hand came during the stroke
    r.hand(False)
    wait_for(lambda: r.spool.counter("missed") == 1, 10, message="the busy miss counted")
    # The stroke worker logs the miss right after counting it in the spool: wait for the line, not the counter.
    line = "missed dispenser=entree reason=busy missed_total=1"
    wait_for(lambda: line in caplog.text, 10, message="the busy miss logged")
    r.wait_idle(1)
    assert r.dispenser.doses == 1 and r.spool.backlog() == 1


def test_a_spool_that_cannot_be_written_does_not_stop_dispensing(rig, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    r, _ = rig()
    with sqlite3.connect(r.cfg.spool) as db:  # what a full SD card answers to the spool's INSERT
        db.execute("CREATE TRIGGER full BEFORE INSERT ON events BEGIN SELECT RAISE(FAIL, 'database or disk is full'); "
                   "END")
    present(r, doses=1)
    # The line is written by the dose's worker just after the stroke: wait for it, not only for the stroke.
    wait_for(lambda: "stroke failed dispenser=entree" in caplog.text and "disk is full" in caplog.text, 10,
             message="the stroke's failure logged")
    duty = [a for a in r.angles() if a]  # pressed, then back at rest and detached all the same
    assert len(duty) == 2 and r.angles()[-1] == 0.0 and r.dispenser.servo.value is None
    assert r.spool.backlog() == 0
    with sqlite3.connect(r.cfg.spool) as db:  # the card is replaced (or cleaned): the next hand is spooled
        db.execute("DROP TRIGGER full")
    present(r, doses=2)
    assert r.spool.backlog() == 1


# --- the command line ----------------------------------------------------------------------------------------


def dispenser_toml(tmp_path: Path, server_url: str, **changes) -> Path:
    """A config.toml with only a [dispenser] table, fast strokes."""
    values = {"id": "entree", "server_url": server_url, "token": TOKEN, "sensor_pin": 17, "servo_pin": 18,
              "dose_ml": 1.5, "spool": "spool.db", "hold_s": 0.05, "return_s": 0.02, "min_interval_s": 0.1,
              "timeout_s": 2.0, "log_level": "DEBUG", **changes}
    path = tmp_path / "dispenser.toml"
    path.write_text("[dispenser]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()),
                    encoding="utf-8")
    return path


def run(config: Path | None, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "dispenser.py"), *(["--config", str(config)] if config else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=config.parent if config else ROOT,
                          env=env)


def test_version_is_the_package_version():
    done = run(None, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == __version__ == importlib.metadata.version("gel-dispenser")


def test_exit_2_when_the_gpio_cannot_be_opened(tmp_path):
    config = dispenser_toml(tmp_path, f"http://127.0.0.1:{free_port()}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPIOZERO_")}  # no mock factory sneaked in
    done = run(config, env=env)  # this machine is no Raspberry Pi: gpiozero finds no GPIO chip
    assert done.returncode == 2, done.stderr
    assert "gpio dispenser=entree" in done.stderr and "try --simulate" in done.stderr
    assert "Traceback" not in done.stderr and TOKEN not in done.stderr


def test_exit_2_when_a_pin_is_claimed_twice(tmp_path):
    config = dispenser_toml(tmp_path, f"http://127.0.0.1:{free_port()}", sensor_pin=18)  # the servo's pin too
    done = run(config, "--simulate", "--hands", "1")
    assert done.returncode == 2, done.stderr
    assert "gpio dispenser=entree" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_sigterm_flushes_the_spool_to_a_reachable_server(tmp_path, write_config):
    port = free_port()
    # Backoff of an hour: once the first attempt failed, only the shutdown flush can deliver in this test.
    config = dispenser_toml(tmp_path, f"http://127.0.0.1:{port}", backoff_base_s=3600, backoff_max_s=3600,
                            heartbeat_s=3600, shutdown_flush_s=20, simulate_mean_interval_s=3600)
    spool = Spool(tmp_path / "spool.db")
    for _ in range(3):
        spool.add(new_event(1.5))
    spool.close()
    log_path = tmp_path / "dispenser.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "dispenser.py"), "--config", str(config), "--simulate"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    server = ServerProcess(write_config(async_mode="eventlet"), port=port)
    with reaped(proc):
        wait_for(lambda: "delivery failed dispenser=entree" in log_path.read_text(), 20, message="a failed attempt")
        server.start()
        assert stop_process(proc, signal.SIGTERM, 30) == 0
    doses = log_path.read_text().count(" dose dispenser=entree ")  # a simulated hand may have come meanwhile
    try:
        payload = requests.get(server.url + "/obtenir_donnees_utilisation", timeout=10).json()
        assert payload["hands_detected"] == 3 + doses
    finally:
        server.stop()
    assert Spool(tmp_path / "spool.db").backlog() == 0


@pytest.mark.slow
def test_the_refill_button_reaches_the_server(server, tmp_path):
    cfg = make_config(tmp_path, server_url=server.url, refill_pin=27)
    requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 150, "hands_detected": 1},
                  headers=bearer(TOKEN), timeout=10).raise_for_status()
    spool = Spool(cfg.spool)
    sender = Sender(cfg, spool).start()
    factory = MockFactory(pin_class=MockPWMPin)
    unit = Dispenser(cfg, spool, wake=sender.wake, refill=sender.request_refill, pin_factory=factory)
    try:
        def entree() -> dict:
            payload = requests.get(server.url + "/obtenir_donnees_utilisation", timeout=10).json()
            return next(d for d in payload["dispensers"] if d["id"] == "entree")

        assert entree()["level_pct"] == 50.0
        unit.refill_button.pin.drive_low()  # pressed: the button pulls its pin to ground
        wait_for(lambda: entree()["refilled_at"] is not None, 10, message="the refill on the server")
        assert entree()["level_pct"] == 100.0
        refills = requests.get(server.url + "/api/dispensers/entree/refills", timeout=10).json()["refills"]
        assert [(r["by"], r["gel_used_before"]) for r in refills] == [("dispenser", 150)]
        wait_for(lambda: spool.counter("refill_pending") == 0, 10, message="no longer pending")
    finally:
        unit.close()
        sender.stop()
        spool.close()
        factory.reset()

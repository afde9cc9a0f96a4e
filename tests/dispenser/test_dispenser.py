"""dispenser.py on gpiozero mock pins: config, one stroke per presence, cooldown, rate cap, stuck sensor, spool."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import AngularServo, DigitalInputDevice
from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPWMPin

from devkit.servers import ROOT, wait_for
from gel_dispenser import spool as spool_module
from gel_dispenser.cli import main
from gel_dispenser.config import SERVO_MAX_ANGLE, SERVO_MIN_ANGLE, Config, ConfigError, load_config, read_config
from gel_dispenser.device import Dispenser
from gel_dispenser.sender import Sender
from gel_dispenser.spool import Spool, new_event
from gel_toolkit import load_toml, setup_logging
from tests.helpers.rigs import Rig, make_config

TOKEN = "token-entree-0001"
REQUIRED_TOML = f"""
[dispenser]
id = "entree"
server_url = "http://127.0.0.1:5000"
token = "{TOKEN}"
sensor_pin = 17
servo_pin = 18
dose_ml = 1.5
spool = "instance/spool.db"
"""


def duty(cfg: Config, angle: float) -> float:
    """The PWM duty cycle gpiozero's AngularServo drives for `angle` (20 ms frames)."""
    span = (angle - SERVO_MIN_ANGLE) / (SERVO_MAX_ANGLE - SERVO_MIN_ANGLE)
    return round((cfg.min_pulse_width + span * (cfg.max_pulse_width - cfg.min_pulse_width)) / 0.02, 4)


@pytest.fixture
def rig(tmp_path) -> Iterator:
    """rig(**config changes) -> a started Rig, closed at teardown."""
    made: list[Rig] = []

    def make(**changes) -> Rig:
        made.append(Rig(make_config(tmp_path, **changes)))
        return made[-1]

    yield make
    for r in made:
        r.close()


# --- configuration ---------------------------------------------------------------------------------------------


def test_config_required_keys_defaults_and_relative_spool(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(REQUIRED_TOML, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.spool == tmp_path / "instance" / "spool.db"
    assert (cfg.heartbeat_s, cfg.sensor_active_low, cfg.refill_pin, cfg.batch_size) == (60.0, True, None, 100)
    assert isinstance(cfg.dose_ml, float)
    flags = {"id": "b12", "token": "another-token", "spool": "/tmp/x.db", "server_url": None}
    over = load_config(path, flags)
    assert (over.id, over.token, over.spool, over.server_url) == ("b12", "another-token", Path("/tmp/x.db"),
                                                                   "http://127.0.0.1:5000")


@pytest.mark.parametrize("extra, message", [
    ("servo_angle = 3", "unknown key(s) ['servo_angle']"),
    ("sensor_pin = '17'", "sensor_pin has the wrong type"),
    ("dispense_angle = 120", "dispense_angle must be from -90 to 90"),
    ("batch_size = 5000", "batch_size must be from 1 to 1000"),
    ("heartbeat_s = 0", "heartbeat_s must be > 0"),
    ("sensor_active_low = 1", "sensor_active_low has the wrong type"),
])
def test_config_errors_are_clear(tmp_path, extra, message):
    text = "\n".join(line for line in REQUIRED_TOML.splitlines() if not line.startswith(extra.split()[0] + " "))
    path = tmp_path / "config.toml"
    path.write_text(text + "\n" + extra + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert message in str(excinfo.value)


def test_config_missing_required_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(REQUIRED_TOML.replace('dose_ml = 1.5\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing required key\(s\) \['dose_ml'\]"):
        load_config(path)


def test_main_reports_config_error_with_exit_2(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text(REQUIRED_TOML + "colour = 'red'\n", encoding="utf-8")
    assert main(["--config", str(path), "--flush"]) == 2
    assert "unknown key(s) ['colour']" in capsys.readouterr().err


# --- one stroke per presence -------------------------------------------------------------------------------------


def test_a_hand_gives_exactly_one_stroke_then_the_servo_detaches(rig):
    r = rig()
    r.hand(True)
    r.wait_idle(1)
    assert r.angles() == [duty(r.cfg, r.cfg.dispense_angle), duty(r.cfg, r.cfg.rest_angle), 0.0]
    assert r.dispenser.servo.value is None
    assert r.spool.backlog() == 1
    (seq, event_id, body), = r.spool.pending(10)
    event = json.loads(body)
    assert event["event_id"] == event_id and event["gel_used"] == 1.5 and event["hands_detected"] == 1
    assert event["timestamp"].endswith("+00:00")


def test_an_unsynced_clock_leaves_the_timestamp_to_the_server():
    assert "timestamp" not in new_event(1.5, now=0.0)  # 1970: NTP has not run yet
    stamped = new_event(1.5, now=1_800_000_000.0)
    assert stamped["timestamp"] == "2027-01-15T08:00:00.000+00:00"


def test_hand_must_leave_before_the_next_dose(rig):
    r = rig()
    r.hand(True)
    r.wait_idle(1)
    r.hand(True)  # still there: no new edge, no new dose
    # gpiozero calls the sensor callback in this thread, so a dose granted for the held hand is pending or
    # running by now: once neither is, every dose it could cause is counted.
    assert r.dispenser.wait_until(lambda: r.dispenser.idle, 5)
    assert r.dispenser.doses == 1
    r.hand(False)
    r.hand(True)  # re-armed once the hand left
    r.wait_idle(2)
    assert r.spool.backlog() == 2
    assert r.spool.counter("missed") == 0


def test_cooldown_refuses_a_quick_second_hand_and_counts_it_missed(rig, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    r = rig(min_interval_s=30.0)
    r.hand(True)
    r.wait_idle(1)
    r.hand(False)
    r.hand(True)
    wait_for(lambda: r.spool.counter("missed") == 1, 5, message="missed counted")
    assert r.dispenser.doses == 1 and r.spool.backlog() == 1
    assert "missed dispenser=entree reason=cooldown missed_total=1" in caplog.text


def test_rate_cap_limits_doses_per_minute(rig):
    r = rig(max_per_minute=3)
    for n in range(1, 4):
        r.hand(True)
        r.wait_idle(n)
        r.hand(False)
    r.hand(True)
    wait_for(lambda: r.spool.counter("missed") == 1, 5, message="rate cap")
    r.hand(False)
    assert r.dispenser.doses == 3 and r.spool.backlog() == 3
    assert r.dispenser.ready_in() > 50  # the first of the three doses leaves the window in about a minute


def test_stuck_sensor_gives_one_dose_a_warning_and_a_missed_count(rig, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    r = rig(stuck_after_s=0.3)
    r.hand(True)  # and never leaves
    r.wait_idle(1)
    wait_for(lambda: "sensor stuck" in caplog.text, 5, message="stuck warning")
    assert [rec.levelname for rec in caplog.records if "sensor stuck" in rec.message] == ["WARNING"]
    # The worker counts the stuck presence as missed before any stroke it would start for it, so once the miss
    # is counted and the dispenser is idle, a second dose would have been counted too.
    wait_for(lambda: r.spool.counter("missed") == 1, 5, message="the stuck presence counted as missed")
    assert r.dispenser.wait_until(lambda: r.dispenser.idle, 5)
    assert r.dispenser.doses == 1 and r.spool.backlog() == 1 and r.spool.counter("missed") == 1
    wait_for(lambda: r.spool.counter("stuck") == 1, 5, message="the stuck flag the next heartbeat sends")
    r.hand(False)
    assert r.spool.counter("stuck") == 0  # cleared: the heartbeat says so, and the server's alert ends
    r.hand(True)  # once it clears, it works again
    r.wait_idle(2)


def test_active_high_sensor(rig):
    r = rig(sensor_active_low=False)
    assert not r.dispenser.sensor.is_active
    r.hand(True)
    r.wait_idle(1)
    assert r.spool.backlog() == 1


def test_each_dose_wakes_the_sender_after_it_is_spooled(tmp_path):
    backlog_when_woken: list[int] = []
    woke = threading.Event()
    rigs: list[Rig] = []

    def wake() -> None:
        backlog_when_woken.append(rigs[0].spool.backlog())
        woke.set()

    rigs.append(Rig(make_config(tmp_path), wake=wake))
    try:
        rigs[0].hand(True)
        assert woke.wait(5)
        assert backlog_when_woken == [1]  # the event was on disk when the sender heard of it
    finally:
        rigs[0].close()


def test_refill_button_reports_a_refill(tmp_path):
    refills = threading.Event()
    r = Rig(make_config(tmp_path, refill_pin=27), refill=refills.set)
    try:
        button = r.dispenser.refill_button.pin
        button.drive_low()  # pressed: the button pulls the pin to ground
        assert refills.wait(5)
    finally:
        r.close()


def test_spool_and_missed_counter_survive_a_restart(tmp_path):
    cfg = make_config(tmp_path, min_interval_s=30.0)
    first = Rig(cfg)
    first.hand(True)
    first.wait_idle(1)
    first.hand(False)
    first.hand(True)
    wait_for(lambda: first.spool.counter("missed") == 1, 5, message="missed")
    event_id = first.spool.pending(1)[0][1]
    first.close()

    second = Rig(cfg)  # a new process would do exactly this: same spool file
    try:
        assert [row[1] for row in second.spool.pending(10)] == [event_id]
        assert second.spool.counter("missed") == 1
        second.hand(True)
        second.wait_idle(1)
        assert second.spool.backlog() == 2
    finally:
        second.close()


def test_close_parks_the_servo_at_rest_mid_stroke(tmp_path):
    r = Rig(make_config(tmp_path, hold_s=30.0))
    r.hand(True)
    wait_for(lambda: r.dispenser.busy and r.spool.backlog() == 1, 5, message="stroke started")
    r.close()  # must not wait for the 30 s hold
    assert r.angles()[-2:] == [duty(r.cfg, r.cfg.rest_angle), 0.0]


# --- logs ------------------------------------------------------------------------------------------------------


def test_token_filter_redacts_every_logger():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("DEBUG", [TOKEN], stream)
        logging.getLogger("urllib3.connectionpool").debug("headers={'Authorization': 'Bearer %s'}", TOKEN)
        try:
            raise RuntimeError(f"boom {TOKEN}")
        except RuntimeError:
            logging.getLogger("dispenser").exception("failed")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    out = stream.getvalue()
    assert TOKEN not in out
    assert out.count("***") == 2 and "Bearer ***" in out


def test_dispenser_needs_neither_flask_nor_the_server_package():
    code = ("import sys, dispenser; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('flask', 'flask_socketio', 'eventlet', 'sqlalchemy', 'app')); print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


# --- devices in gpiozero's manner ------------------------------------------------------------------------------


def test_a_failed_constructor_releases_the_pins_it_claimed(tmp_path):
    factory = MockFactory(pin_class=MockPWMPin)
    cfg = make_config(tmp_path, sensor_pin=18, servo_pin=18)  # the sensor finds its pin taken by the servo
    try:
        with Spool(cfg.spool) as spool, pytest.raises(GPIOPinInUse):
            Dispenser(cfg, spool, pin_factory=factory)
        with AngularServo(18, pin_factory=factory) as servo:  # the servo's pin was given back
            assert servo.pwm_device.pin.info.name == "GPIO18"
    finally:
        factory.reset()


def test_with_closes_the_devices_and_close_twice_is_harmless(tmp_path):
    factory = MockFactory(pin_class=MockPWMPin)
    cfg = make_config(tmp_path, refill_pin=27)
    try:
        with Spool(cfg.spool) as spool:
            with Dispenser(cfg, spool, pin_factory=factory) as unit:
                assert not unit.closed
            assert unit.closed
            unit.close()
            for pin in (17, 18, 27):
                with DigitalInputDevice(pin, pin_factory=factory):
                    pass  # free again
    finally:
        factory.reset()


# --- spool: clock readings and migration ------------------------------------------------------------------------


def test_doses_carry_age_s_within_their_boot_only(tmp_path):
    cfg = make_config(tmp_path)
    with Spool(cfg.spool) as spool:
        now = time.monotonic()
        spool.add(new_event(1.5), now - 12.3456, "this-boot")
        spool.add(new_event(1.5), now - 5.0, "an-earlier-boot")  # its monotonic clock restarted at 0
        spool.add(new_event(1.5))  # no reading: sent as it was spooled
        sender = Sender(cfg, spool, boot="this-boot")
        try:
            body = json.loads(sender.body(spool.due(10)))
        finally:
            sender.stop()
    assert 12.345 <= body[0]["age_s"] < 12.345 + 5  # generous: only a loaded machine makes it more
    assert "age_s" not in body[1] and "age_s" not in body[2]


def test_an_old_spool_is_migrated_and_its_events_kept(tmp_path):
    path = tmp_path / "spool.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, body TEXT NOT NULL,
                             created_at REAL NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO events (event_id, body, created_at) VALUES ('e1', '{"event_id":"e1","gel_used":1.5}', 0);
        INSERT INTO meta VALUES ('missed', 4);
    """)
    old.commit()
    old.close()
    with Spool(path) as spool:
        assert spool.due(10) == [(1, "e1", '{"event_id":"e1","gel_used":1.5}', None, None)]
        assert spool.counter("missed") == 4
        spool.add(new_event(1.5), 1.0, "boot")
        assert [row.boot for row in spool.due(10)] == [None, "boot"]
    with Spool(path) as again:  # opening a migrated spool again changes nothing
        assert again.backlog() == 2


def test_boot_id_falls_back_to_a_per_process_id(tmp_path):
    assert spool_module.read_boot_id(tmp_path / "missing").startswith("process-")
    boot = tmp_path / "boot_id"
    boot.write_text("1b0e7c1e-0000-4000-8000-000000000001\n")
    assert spool_module.read_boot_id(boot) == "1b0e7c1e-0000-4000-8000-000000000001"


# --- start-up warnings and ca_file -------------------------------------------------------------------------------


@pytest.mark.parametrize("url, warned", [
    ("http://192.168.1.10:5000", True),
    ("http://gel-server.local", True),
    ("http://127.0.0.1:5000", False),
    ("http://localhost:5000", False),
    ("https://192.168.1.10", False),
])
def test_plain_http_to_another_host_is_warned(tmp_path, url, warned):
    path = tmp_path / "config.toml"
    path.write_text(REQUIRED_TOML.replace("http://127.0.0.1:5000", url), encoding="utf-8")
    _, warnings = read_config(path)
    assert any("travels in clear" in w for w in warnings) == warned


def test_a_server_table_with_tokens_is_warned(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(REQUIRED_TOML + '\n[server]\nport = 5000\n', encoding="utf-8")
    assert read_config(path)[1] == []  # no token in it: nothing to steal
    path.write_text(REQUIRED_TOML + f'\n[[server.dispensers]]\nid = "entree"\ntoken = "{TOKEN}"\n', encoding="utf-8")
    assert any("[server] table with tokens" in w for w in read_config(path)[1])
    path.write_text(REQUIRED_TOML + '\n[server]\nadmin_token = "token-admin-0000"\n', encoding="utf-8")
    assert any("[server] table with tokens" in w for w in read_config(path)[1])


def test_the_shipped_dispenser_template_is_valid_and_quiet():
    template = ROOT / "deploy" / "dispenser.example.toml"
    cfg, warnings = read_config(template)
    assert cfg.server_url.startswith("https://") and warnings == []
    assert set(load_toml(template)) == {"dispenser"}


def test_main_logs_the_warnings_at_start(tmp_path, capsys):
    path = tmp_path / "config.toml"
    text = REQUIRED_TOML.replace("http://127.0.0.1:5000", "http://192.0.2.1:9") + "timeout_s = 0.5\n"
    path.write_text(text + f'\n[[server.dispensers]]\nid = "entree"\ntoken = "{TOKEN}"\n', encoding="utf-8")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert main(["--config", str(path), "--flush", "--flush-timeout", "0"]) == 0
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert err.count(" WARNING dispenser config dispenser=entree warning=") == 2
    assert TOKEN not in err


def test_ca_file_is_resolved_checked_and_used(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(REQUIRED_TOML + 'ca_file = "ca.pem"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="ca_file .*ca.pem is not a readable file"):
        load_config(path)
    (tmp_path / "ca.pem").write_text("not checked here\n")
    cfg = load_config(path)
    assert cfg.ca_file == tmp_path / "ca.pem"
    with Spool(tmp_path / "s.db") as spool:
        sender = Sender(cfg, spool)
        assert sender.verify == str(tmp_path / "ca.pem")
        sender.stop()

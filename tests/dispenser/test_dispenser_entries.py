"""The door counter on gpiozero mock pins: one beam, two beams (in from out), debounce, a stuck beam, the spool,
delivery to a real server exactly once, and `--simulate` people coming in."""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from gpiozero import DigitalInputDevice
from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPWMPin

from devkit.servers import ROOT, free_port, reaped, stop_process, wait_for
from gel_dispenser.config import ConfigError, load_config
from gel_dispenser.entries import EntryCounter
from gel_dispenser.sender import Sender
from gel_dispenser.simulate import Simulator
from gel_dispenser.spool import Spool
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS
from tests.helpers.rigs import Rig, make_config

OUTER, INNER = 22, 23  # entry_pin, exit_pin


class Door:
    """An EntryCounter on mock pins, on a monotonic clock the test moves (`now[0]`), and a way to walk through."""

    def __init__(self, tmp_path: Path, **changes):
        self.cfg = make_config(tmp_path, entry_pin=OUTER, **changes)
        self.factory = MockFactory(pin_class=MockPWMPin)
        self.spool = Spool(self.cfg.spool)
        self.now = [1000.0]
        self.woken: list[int] = []  # the backlog each time the sender was woken
        self.counter = EntryCounter(self.cfg, self.spool, wake=lambda: self.woken.append(self.spool.backlog()),
                                    pin_factory=self.factory, monotonic=lambda: self.now[0])

    def beam(self, index: int, broken: bool) -> None:
        """Break or clear beam 0 (outer) or 1 (inner); break-beam receivers pull low while broken."""
        pin = self.counter.beams[index].pin
        if broken == self.cfg.entry_active_low:
            pin.drive_low()
        else:
            pin.drive_high()

    def through(self, *order: int, gap_s: float = 0.1) -> None:
        """Someone passes: the beams in `order` broken one after the other, then cleared in the same order."""
        for index in order:
            self.beam(index, True)
            self.now[0] += gap_s
        for index in order:
            self.beam(index, False)
            self.now[0] += gap_s

    def events(self, count: int) -> list[dict]:
        """The spooled events once `count` entries are on disk."""
        assert self.counter.wait_until(lambda: self.counter.spooled >= count, 5), self.counter.spooled
        return [json.loads(body) for _, _, body in self.spool.pending(1000)]

    def close(self) -> None:
        self.counter.close()
        self.spool.close()
        self.factory.reset()


@pytest.fixture
def door(tmp_path) -> Iterator[Callable[..., Door]]:
    """door(**config changes) -> a Door, closed at teardown."""
    made: list[Door] = []

    def make(**changes) -> Door:
        made.append(Door(tmp_path, **changes))
        return made[-1]

    yield make
    for d in made:
        d.close()


# --- one beam --------------------------------------------------------------------------------------------------


def test_one_beam_counts_each_passage_and_spools_it_before_waking_the_sender(door):
    d = door()
    for _ in range(3):
        d.through(0)
        d.now[0] += 5
    events = d.events(3)
    assert d.counter.entered == 3 and sum(e["entries"] for e in events) == 3
    assert all(set(e) == {"event_id", "entries", "timestamp"} for e in events)
    assert len({e["event_id"] for e in events}) == len(events)
    assert d.woken and all(backlog >= 1 for backlog in d.woken)


def test_entries_counted_just_before_close_are_spooled_not_lost(door):
    d = door()
    for _ in range(5):
        d.through(0, gap_s=1)
    d.counter.close()  # at once: the worker may not have written them yet
    assert d.counter.spooled == 5
    assert sum(json.loads(body)["entries"] for _, _, body in d.spool.pending(100)) == 5


def test_a_beam_broken_again_within_the_debounce_is_the_same_passage(door):
    d = door(entry_debounce_s=0.3)
    d.through(0)
    d.now[0] += 0.1  # an arm, a bag: broken again 0.2 s after the clear
    d.through(0)
    assert d.counter.entered == 1
    d.now[0] += 0.2  # 0.3 s after the last clear: someone else
    d.through(0)
    assert d.counter.entered == 2
    assert sum(e["entries"] for e in d.events(2)) == 2


def test_active_high_sensor_a_pir(door):
    d = door(entry_active_low=False)
    assert not d.counter.beams[0].is_active
    d.through(0)
    assert d.counter.entered == 1


# --- a stuck beam ----------------------------------------------------------------------------------------------


def test_a_stuck_beam_warns_once_counts_nothing_then_counts_again_once_cleared(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    factory = MockFactory(pin_class=MockPWMPin)
    cfg = make_config(tmp_path, entry_pin=OUTER, exit_pin=INNER, entry_debounce_s=0.0, entry_stuck_after_s=0.3)
    try:
        with Spool(cfg.spool) as spool, EntryCounter(cfg, spool, pin_factory=factory) as counter:
            outer, inner = (beam.pin for beam in counter.beams)
            outer.drive_low()  # broken, and it stays broken (real clock: the guard's timed wait is what we test)
            wait_for(lambda: "outer beam stuck" in caplog.text, 5, message="stuck warning")
            inner.drive_low()
            inner.drive_high()  # the inner beam alone while the outer is blocked: direction unknown, not counted
            assert (counter.entered, counter.exited) == (0, 0)
            outer.drive_high()
            assert "outer beam cleared dispenser=entree stuck_for=" in caplog.text
            outer.drive_low()  # a passage in, as soon as it cleared
            inner.drive_low()
            outer.drive_high()
            inner.drive_high()
            assert counter.wait_until(lambda: counter.spooled == 1, 5)
    finally:
        factory.reset()
    warnings = [rec for rec in caplog.records if "stuck" in rec.message and rec.levelname == "WARNING"]
    assert len(warnings) == 1 and "action='no passages counted until it clears'" in warnings[0].message


def test_the_hand_sensor_keeps_its_own_stuck_guard_beside_the_door(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    rig = Rig(make_config(tmp_path, entry_pin=OUTER, stuck_after_s=0.2, entry_stuck_after_s=3600))
    try:
        rig.hand(True)
        wait_for(lambda: "sensor stuck dispenser=entree" in caplog.text, 5, message="hand sensor stuck")
        simulator = Simulator(rig.dispenser, threading.Event())
        simulator.walk(entering=True)
        assert rig.dispenser.entries.entered == 1  # the door still counts
        assert "beam stuck" not in caplog.text
    finally:
        rig.close()


# --- two beams -------------------------------------------------------------------------------------------------


def test_two_beams_tell_coming_in_from_going_out_and_only_entries_are_sent(door):
    d = door(exit_pin=INNER, entry_window_s=1.5)
    d.through(0, 1)  # outer then inner: in
    d.now[0] += 5
    d.through(1, 0)  # inner then outer: out
    d.now[0] += 5
    d.through(0, 1, gap_s=0.5)  # a slow walker
    assert (d.counter.entered, d.counter.exited) == (2, 1)
    d.now[0] += 5
    d.through(0)  # a step in, and back out: half a passage
    d.now[0] += 2  # longer than the window
    d.through(1, 0)  # someone leaving later is not taken for the other half
    assert (d.counter.entered, d.counter.exited) == (2, 2)
    d.now[0] += 5
    d.through(0, 1, gap_s=2)  # the second beam too late for a passage
    assert (d.counter.entered, d.counter.exited) == (2, 2)
    assert sum(e["entries"] for e in d.events(2)) == 2


def test_a_failed_counter_releases_the_pin_it_claimed(tmp_path):
    factory = MockFactory(pin_class=MockPWMPin)
    cfg = make_config(tmp_path, entry_pin=OUTER, exit_pin=INNER)
    try:
        with DigitalInputDevice(INNER, pin_factory=factory), Spool(cfg.spool) as spool:
            with pytest.raises(GPIOPinInUse):
                EntryCounter(cfg, spool, pin_factory=factory)
            with DigitalInputDevice(OUTER, pin_factory=factory) as outer:  # given back
                assert outer.pin.info.name == f"GPIO{OUTER}"
    finally:
        factory.reset()


def test_the_dispenser_opens_and_closes_its_door(tmp_path):
    rig = Rig(make_config(tmp_path, entry_pin=OUTER, exit_pin=INNER))
    counter = rig.dispenser.entries
    assert counter is not None and len(counter.beams) == 2
    rig.close()
    assert counter.closed and rig.dispenser.entries is None
    counter.close()  # twice is harmless


# --- configuration ---------------------------------------------------------------------------------------------

REQUIRED = {"id": "entree", "server_url": "http://127.0.0.1:5000", "token": TOKENS["entree"], "sensor_pin": 17,
            "servo_pin": 18, "dose_ml": 1.5, "spool": "spool.db"}


def config_file(tmp_path: Path, **values) -> Path:
    """A config.toml holding a [dispenser] table of REQUIRED updated by `values`."""
    table = {**REQUIRED, **values}
    path = tmp_path / "dispenser.toml"
    path.write_text("[dispenser]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + "\n")
    return path


def test_door_keys_load_with_their_defaults(tmp_path):
    cfg = load_config(config_file(tmp_path, entry_pin=22, exit_pin=23))
    assert (cfg.entry_pin, cfg.exit_pin, cfg.entry_active_low) == (22, 23, True)
    assert (cfg.entry_debounce_s, cfg.entry_window_s, cfg.entry_stuck_after_s) == (0.3, 1.5, 30.0)
    plain = load_config(config_file(tmp_path))
    assert (plain.entry_pin, plain.exit_pin) == (None, None)


@pytest.mark.parametrize("values, message", [
    ({"entry_pin": 28}, "entry_pin must be a BCM pin number from 0 to 27"),
    ({"entry_pin": -1}, "entry_pin must be a BCM pin number from 0 to 27"),
    ({"sensor_pin": 40}, "sensor_pin must be a BCM pin number from 0 to 27"),
    ({"entry_pin": "22"}, "entry_pin has the wrong type"),
    ({"entry_pin": 22.0}, "entry_pin has the wrong type"),
    ({"exit_pin": 23}, "exit_pin needs an entry_pin"),
    ({"entry_pin": 17}, "entry_pin and sensor_pin are both 17: each needs a pin of its own"),
    ({"entry_pin": 18}, "entry_pin and servo_pin are both 18"),
    ({"entry_pin": 22, "exit_pin": 22}, "exit_pin and entry_pin are both 22"),
    ({"entry_pin": 22, "exit_pin": 27, "refill_pin": 27}, "exit_pin and refill_pin are both 27"),
    ({"entry_pin": 22, "entry_debounce_s": -0.1}, "entry_debounce_s must be >= 0"),
    ({"entry_pin": 22, "entry_window_s": 0}, "entry_window_s must be > 0"),
    ({"entry_pin": 22, "entry_stuck_after_s": 0}, "entry_stuck_after_s must be > 0"),
    ({"entry_active_low": "yes"}, "entry_active_low has the wrong type"),
    ({"simulate_hand_share": 1.5}, "simulate_hand_share must be from 0 to 1"),
    ({"entry_pins": 22}, "unknown key(s) ['entry_pins']"),
])
def test_door_config_errors_are_clear(tmp_path, values, message):
    with pytest.raises(ConfigError) as excinfo:
        load_config(config_file(tmp_path, **values))
    assert message in str(excinfo.value)


# --- --simulate ------------------------------------------------------------------------------------------------


def test_simulated_people_come_in_and_go_out_and_some_use_the_dispenser(tmp_path):
    rig = Rig(make_config(tmp_path, entry_pin=OUTER, exit_pin=INNER, entry_debounce_s=0.0, simulate_hand_share=0.5))
    stop = threading.Event()
    simulator = Simulator(rig.dispenser, stop, rng=random.Random(14))
    runner = threading.Thread(target=simulator.random_hands, args=(0.05,), daemon=True)
    counter = rig.dispenser.entries
    try:
        runner.start()
        assert rig.dispenser.wait_until(lambda: rig.dispenser.doses >= 2, 20)
        assert counter.wait_until(lambda: counter.exited >= 1 and counter.spooled >= 2, 10)
    finally:
        stop.set()
        runner.join(10)
        rig.close()
    assert counter.entered >= rig.dispenser.doses  # only people coming in use it, and not all of them


# --- delivery to a real server ---------------------------------------------------------------------------------


def figures(url: str) -> tuple[int, int, int]:
    """(entries, hands_detected, the dispenser entree's entries) from the server's GET payload."""
    payload = requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()
    mine = next(d for d in payload["dispensers"] if d["id"] == "entree")
    return payload["entries"], payload["hands_detected"], mine["entries"]


@pytest.mark.slow
def test_entries_reach_a_server_that_was_down_exactly_once(server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dispenser")
    server.stop()  # down when the people come in
    cfg = make_config(tmp_path, server_url=server.url, entry_pin=OUTER, exit_pin=INNER, entry_debounce_s=0.0)
    spool = Spool(cfg.spool)
    sender = Sender(cfg, spool).start()
    rig = Rig(cfg, wake=sender.wake, spool=spool)
    try:
        simulator = Simulator(rig.dispenser, threading.Event())
        for entering in (True, True, False, True):
            simulator.walk(entering)
        counter = rig.dispenser.entries
        assert counter.wait_until(lambda: counter.spooled == 3, 5)
        wait_for(lambda: "delivery failed dispenser=entree" in caplog.text, 10, message="a failed delivery")
        spooled = [json.loads(body) for _, _, body in spool.pending(100)]
        assert sum(event["entries"] for event in spooled) == 3

        server.start()
        assert sender.wait_empty(20)
        assert figures(server.url) == (3, 0, 3)
        # The same events again (a 200 that got lost on its way back): the server counts none of them twice.
        again = requests.post(server.url + "/mettre_a_jour_donnees", json=spooled, headers=bearer(cfg.token),
                              timeout=10)
        assert again.status_code == 200 and again.json()["duplicates"] == len(spooled)
        assert figures(server.url) == (3, 0, 3)
    finally:
        rig.close()
        sender.stop()
        spool.close()


@pytest.mark.slow
def test_simulate_hands_sends_an_entry_with_each_presence(server, tmp_path):
    config = config_file(tmp_path, server_url=server.url, entry_pin=OUTER, exit_pin=INNER, hold_s=0.05,
                         return_s=0.02, min_interval_s=0.05, entry_debounce_s=0.05)
    done = subprocess.run([sys.executable, str(ROOT / "dispenser.py"), "--config", str(config), "--simulate",
                           "--hands", "3"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert figures(server.url) == (3, 3, 3)
    assert "stopped entries dispenser=entree entries=3 exits=0" in done.stderr


# --- the demo --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dispensers", "fleet"])
def test_the_demo_sends_entries_too(tmp_path, mode):
    port = free_port()
    config = tmp_path / "config.toml"
    if mode == "fleet":
        config.write_text(f"[server]\nport = {port}\n", encoding="utf-8")
        flags = ["--fleet", "12", "--mean-interval", "2"]
    else:  # the shipped config: three dispenser.py --simulate, each with a door of two beams
        config.write_text((ROOT / "config.toml").read_text().replace("port = 5000", f"port = {port}"))
        flags = ["--mean-interval", "0.3"]
    printed = tmp_path / "demo.out"
    with printed.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "demo.py"), "--config", str(config), *flags],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    with reaped(proc):
        wait_for(lambda: f"http://127.0.0.1:{port}/" in printed.read_text(), 60, message="the demo's URL")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: sum(1 for n in figures_of_all(url)[1].values() if n) >= 2, 60,
                 message="entries from two simulated doors")
        entries, per_dispenser = figures_of_all(url)
        assert sum(per_dispenser.values()) == entries
        assert stop_process(proc, signal.SIGINT, 30) == 0  # Ctrl-C: every child stops, the demo exits 0


def figures_of_all(url: str) -> tuple[int, dict[str, int]]:
    """(entries, entries by dispenser id) from the GET payload."""
    payload = requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()
    return payload["entries"], {d["id"]: d["entries"] for d in payload["dispensers"]}

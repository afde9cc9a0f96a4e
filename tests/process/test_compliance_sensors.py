"""Compliance end to end with simulated sensors: people pass a two-beam door and use real dispensers on gpiozero
mock pins, the spool and sender deliver to a real server, and /api/compliance gives the rates exactly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from devkit.servers import ServerProcess, wait_for
from gel_dispenser.sender import Sender
from gel_dispenser.spool import Spool
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS
from tests.helpers.rigs import Rig, make_config
from tests.helpers.wards import ward_config_text

pytestmark = pytest.mark.slow

OUTER, INNER = 22, 23  # entry_pin (corridor side), exit_pin
DOSE_ML = 1.5
OPPORTUNITIES = 10  # ward-a's opportunities_per_patient_day in tests/helpers/wards.py
PATIENTS = 2


def noon_zone() -> str:
    """A fixed-offset zone in which it is about noon now, so the test's 'today' cannot end while it runs."""
    offset = 12 - datetime.now(UTC).hour  # from -11 to +12: every one is an Etc/GMT zone
    return f"Etc/GMT{-offset:+d}"  # POSIX-style names: Etc/GMT-3 is three hours ahead of UTC


class Clock:
    """The dispenser's monotonic clock: the real one plus an offset the test moves, so cooldown and debounce pass
    without sleeping, and the spool's readings never lie ahead of the sender's clock (age_s stays >= 0)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Station:
    """One real dispenser (hand sensor, optional door) on mock pins, with its own spool and a started sender."""

    def __init__(self, tmp_path: Path, url: str, ident: str, door: bool):
        pins = {"entry_pin": OUTER, "exit_pin": INNER} if door else {}
        # The shipped cooldown and debounce (2 s, 0.3 s): the clock below is moved past them.
        cfg = make_config(tmp_path, id=ident, token=TOKENS[ident], server_url=url, dose_ml=DOSE_ML,
                          spool=tmp_path / f"{ident}.db", min_interval_s=2.0, entry_debounce_s=0.3, **pins)
        self.spool = Spool(cfg.spool)
        self.sender = Sender(cfg, self.spool).start()
        self.rig = Rig(cfg, wake=self.sender.wake, spool=self.spool)
        self.clock = Clock()
        self.rig.dispenser.monotonic = self.clock
        if self.rig.dispenser.entries is not None:
            self.rig.dispenser.entries.monotonic = self.clock

    def walk(self, *beams: int) -> None:
        """Someone passes the door: beams (0 outer, 1 inner) broken one after the other, then cleared in order."""
        pins = [beam.pin for beam in self.rig.dispenser.entries.beams]
        for index in beams:
            pins[index].drive_low()  # a broken beam pulls its receiver low (entry_active_low)
            self.clock.advance(0.1)
        for index in beams:
            pins[index].drive_high()
            self.clock.advance(0.1)
        self.clock.advance(5)  # the next person comes well after the debounce

    def use(self) -> None:
        """A hand in front of the sensor, then away; wait for the stroke to end."""
        doses = self.rig.dispenser.doses
        self.rig.hand(True)
        self.rig.hand(False)
        self.rig.wait_idle(doses + 1)
        self.clock.advance(5)  # past the cooldown

    def delivered(self) -> None:
        """Wait until the door spooled every entry it counted (doses are spooled before the stroke ends), then
        until the sender emptied the spool: the server has answered 200 for each event."""
        counter = self.rig.dispenser.entries
        if counter is not None:
            assert counter.wait_until(lambda: counter.spooled == counter.entered, 5), counter.spooled
        assert self.sender.wait_empty(20), self.spool.backlog()

    def close(self) -> None:
        self.rig.close()
        self.sender.stop()
        self.spool.close()


@pytest.fixture
def ward(tmp_path, server_factory) -> Iterator[tuple[ServerProcess, str, Callable[..., Station]]]:
    """(a real server with the wards config in a fixed zone, today's local date there, station(ident, door))."""
    zone = noon_zone()
    config = tmp_path / "config.toml"
    config.write_text(ward_config_text(timezone=zone), encoding="utf-8")
    server = server_factory(config)
    made: list[Station] = []

    def station(ident: str, door: bool = False) -> Station:
        made.append(Station(tmp_path, server.url, ident, door))
        return made[-1]

    yield server, datetime.now(ZoneInfo(zone)).date().isoformat(), station
    for s in made:
        s.close()


def put_census(url: str, day: str, patients: int) -> None:
    resp = requests.put(f"{url}/api/groups/ward-a/census/{day}", json={"patients": patients}, headers=bearer(ADMIN),
                        timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"group": "ward-a", "date": day, "patients": patients}


def today_row(url: str, day: str) -> dict:
    """Ward A's compliance row for `day`, the only row of a one-day range."""
    resp = requests.get(f"{url}/api/compliance", params={"group": "ward-a", "from": day, "to": day, "bucket": "day"},
                        timeout=10)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert (answer["target_pct"], answer["opportunities_per_patient_day"]) == (80, OPPORTUNITIES)
    assert [row["start"] for row in answer["rows"]] == [day]
    return answer["rows"][0]


def ward_totals(url: str) -> tuple[int, int]:
    payload = requests.get(url + "/obtenir_donnees_utilisation", params={"group": "ward-a"}, timeout=10).json()
    return payload["entries"], payload["hands_detected"]


def expected_row(entries: int, hands: int) -> dict:
    """The figures a day with these entries and hands, and the census of PATIENTS, must give (worked by hand)."""
    expected = PATIENTS * OPPORTUNITIES
    return {"entries": entries, "hands": hands, "entry_rate_pct": round(100 * hands / entries, 2),
            "patient_days": PATIENTS, "expected_opportunities": expected,
            "compliance_pct": round(100 * hands / expected, 2), "gel_ml": hands * DOSE_ML,
            "ml_per_patient_day": hands * DOSE_ML / PATIENTS}


def picked(row: dict, like: dict) -> dict:
    return {key: row[key] for key in like}


def test_people_through_the_door_and_hands_at_two_dispensers_give_the_rates(ward):
    server, today, station = ward
    door, cafe = station("entree", door=True), station("cafeteria")
    for person in range(5):  # five come in through the door; the 1st and 4th rub at the door, the 2nd in the ward
        door.walk(0, 1)
        if person in (0, 3):
            door.use()
        if person == 1:
            cafe.use()
    door.walk(1, 0)  # one goes out: an exit, not an entry
    door.walk(0)  # a step in and back: one beam alone is no passage
    door.delivered()
    cafe.delivered()
    assert door.rig.dispenser.entries.exited == 1
    assert ward_totals(server.url) == (5, 3)

    no_census = today_row(server.url, today)
    assert (no_census["entries"], no_census["hands"], no_census["entry_rate_pct"]) == (5, 3, 60.0)
    assert (no_census["patient_days"], no_census["compliance_pct"]) == (None, None)  # no census, no rate

    put_census(server.url, today, PATIENTS)
    row = today_row(server.url, today)
    want = expected_row(entries=5, hands=3)
    assert picked(row, want) == want
    assert want == {"entries": 5, "hands": 3, "entry_rate_pct": 60.0, "patient_days": 2, "expected_opportunities": 20,
                    "compliance_pct": 15.0, "gel_ml": 4.5, "ml_per_patient_day": 2.25}


def set_mode(url: str, mode: str) -> None:
    resp = requests.post(f"{url}/api/dispensers/entree/mode", json={"mode": mode}, headers=bearer(ADMIN), timeout=10)
    assert resp.status_code == 200 and resp.json()["dispenser"]["mode"] == mode, resp.text


def entree(url: str) -> dict:
    payload = requests.get(url + "/obtenir_donnees_utilisation", params={"dispenser": "entree"}, timeout=10).json()
    return payload["dispensers"][0]


def test_presses_in_test_mode_are_recorded_and_move_no_rate(ward):
    server, today, station = ward
    door = station("entree", door=True)
    put_census(server.url, today, PATIENTS)
    for _ in range(2):
        door.walk(0, 1)
        door.use()
    door.delivered()
    live = today_row(server.url, today)
    assert picked(live, expected_row(entries=2, hands=2)) == expected_row(entries=2, hands=2)

    set_mode(server.url, "test")
    door.walk(0, 1)  # the installer walks in and tries the sensor twice
    door.use()
    door.use()
    door.delivered()
    wait_for(lambda: entree(server.url)["test_events"] == 3, 10, message="3 test events recorded")
    mine = entree(server.url)
    assert (mine["mode"], mine["entries"], mine["hands_detected"], mine["gel_used"]) == ("test", 2, 2, 2 * DOSE_ML)
    assert today_row(server.url, today) == live

    set_mode(server.url, "live")  # back in service: the next use counts again
    door.use()
    door.delivered()
    wait_for(lambda: entree(server.url)["hands_detected"] == 3, 10, message="the live use counted")
    row = today_row(server.url, today)
    assert picked(row, expected_row(entries=2, hands=3)) == expected_row(entries=2, hands=3)

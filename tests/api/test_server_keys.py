"""What the README promises of `[server]` keys: a list of CORS origins, opening hours, strict dispenser tables."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import socketio

from app import create_app
from app.config import ConfigError, load_config
from devkit.servers import ROOT, ServerProcess
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS, config_text

ALLOWED = ["http://kiosk.example", "http://intranet.example:8080"]
READ_ROUTES = ["/obtenir_donnees_utilisation", "/api/history", "/api/history?bucket=day"]


def with_server_lines(path: Path, *lines: str, **server) -> Path:
    """The test config with raw TOML lines added to [server] (lists are written as TOML, not as Python)."""
    text = config_text(**server).replace("[server]\n", "[server]\n" + "".join(line + "\n" for line in lines), 1)
    path.write_text(text, encoding="utf-8")
    return path


def origins_line(origins: list[str]) -> str:
    return "cors_origins = [" + ", ".join(f'"{o}"' for o in origins) + "]"


@pytest.fixture
def list_client(tmp_path):
    """A test client of an app whose cors_origins is a list of two origins."""
    app = create_app(with_server_lines(tmp_path / "config.toml", origins_line(ALLOWED)))
    return app.test_client()


@pytest.mark.parametrize("route", READ_ROUTES)
@pytest.mark.parametrize("origin", ALLOWED)
def test_a_listed_origin_is_allowed_by_name(list_client, route, origin):
    resp = list_client.get(route, headers={"Origin": origin})
    assert resp.status_code == 200
    assert resp.headers.get("Access-Control-Allow-Origin") == origin
    assert "Origin" in resp.headers.get("Vary", "")  # a cache must not hand one origin's answer to another


@pytest.mark.parametrize("route", READ_ROUTES)
@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://kiosk.example.evil.example"])
def test_an_unlisted_origin_gets_no_allow_header(list_client, route, origin):
    resp = list_client.get(route, headers={"Origin": origin} if origin else {})
    assert resp.status_code == 200  # the data is not secret; the browser simply refuses it to that page
    assert resp.headers.get("Access-Control-Allow-Origin") is None


def test_the_default_star_still_allows_everyone(tmp_path):
    client = create_app(with_server_lines(tmp_path / "config.toml")).test_client()
    resp = client.get("/obtenir_donnees_utilisation", headers={"Origin": "http://anything.example"})
    assert resp.headers.get("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize("line", ["cors_origins = 3", "cors_origins = [1, 2]", 'cors_origins = ["kiosk.example"]'])
def test_a_malformed_cors_origins_is_a_config_error(tmp_path, line):
    with pytest.raises(ConfigError, match="cors_origins"):
        load_config(with_server_lines(tmp_path / "config.toml", line))


@pytest.mark.slow
def test_socketio_accepts_listed_origins_only(tmp_path):
    server = ServerProcess(with_server_lines(tmp_path / "config.toml", origins_line(ALLOWED), async_mode="eventlet"))
    server.start()
    try:
        for origin, allowed in ((ALLOWED[0], True), (ALLOWED[1], True), ("http://evil.example", False)):
            client = socketio.Client(reconnection=False)
            try:
                # Long-polling: websocket-client would add an Origin of its own next to this one.
                client.connect(server.url, headers={"Origin": origin}, transports=["polling"], wait_timeout=10)
                connected = client.connected
            except socketio.exceptions.ConnectionError:
                connected = False
            finally:
                client.disconnect()
            assert connected is allowed, origin
    finally:
        server.stop()


# --- opening_hours ---------------------------------------------------------------------------------------------


def zone_at_noon() -> str:
    """A fixed-offset zone where it is 12:xx now, so that 10:00-14:00 holds now by more than an hour each way."""
    offset = 12 - time.gmtime().tm_hour  # -11 .. +12, all of which exist as Etc/GMT zones
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-5 is UTC+5 (POSIX sign)


def idle_flags(tmp_path: Path, opening_hours: str, alert_min: float) -> tuple[bool, list[tuple[str, str]]]:
    """Post a use made ten minutes ago; return the no_use flag of that dispenser and the alerts."""
    path = tmp_path / f"hours-{opening_hours.replace(':', '')}-{alert_min}.toml"
    path.write_text(config_text(database=f"sqlite:///{path.stem}.db", timezone=zone_at_noon(),
                                opening_hours=opening_hours, no_use_alert_min=alert_min), encoding="utf-8")
    client = create_app(path).test_client()
    ten_minutes_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    use = {"gel_used": 1, "hands_detected": 1, "timestamp": ten_minutes_ago}
    resp = client.post("/mettre_a_jour_donnees", json=use, headers=bearer(TOKENS["entree"]))
    assert resp.status_code == 200
    payload = client.get("/obtenir_donnees_utilisation").get_json()
    entree = next(d for d in payload["dispensers"] if d["id"] == "entree")
    return entree["no_use"], [(a["dispenser"], a["kind"]) for a in payload["alerts"] if a["kind"] == "no_use"]


def test_no_use_alert_inside_opening_hours(tmp_path):
    idle, alerts = idle_flags(tmp_path, "10:00-14:00", 5)
    assert idle is True
    assert ("entree", "no_use") in alerts
    # The dispensers never used at all are idle too: nobody used them for longer than the delay.
    assert ("cafeteria", "no_use") in alerts


@pytest.mark.parametrize("hours", ["10:00-14:00", "11:00-01:00", "00:00-23:59"])
def test_no_use_alert_inside_opening_hours_of_any_shape(tmp_path, hours):
    # 11:00-01:00 runs past midnight (a late shift): noon is inside it.
    assert idle_flags(tmp_path, hours, 5)[0] is True


@pytest.mark.parametrize("hours", ["14:00-18:00", "06:00-10:00", "00:00-12:00", "13:00-23:59", "22:00-06:00",
                                   "13:00-11:00"])
def test_no_use_alert_never_outside_opening_hours(tmp_path, hours):
    idle, alerts = idle_flags(tmp_path, hours, 5)
    assert (idle, alerts) == (False, [])


def test_no_use_alert_waits_for_its_delay(tmp_path):
    idle, alerts = idle_flags(tmp_path, "10:00-14:00", 30)  # used ten minutes ago, the alert needs thirty
    assert idle is False and ("entree", "no_use") not in alerts


# --- [[server.dispensers]] -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["capacity", "tokn", "pin"])
def test_an_unknown_key_in_a_dispenser_table_is_refused(tmp_path, key):
    path = tmp_path / "config.toml"
    text = config_text().replace('id = "cafeteria"', f'id = "cafeteria"\n{key} = 1')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "[[server.dispensers]] #2" in message and repr(key) in message
    done = subprocess.run([sys.executable, "-m", "app", "--config", str(path), "--port", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and repr(key) in done.stderr
    assert "Traceback" not in done.stderr

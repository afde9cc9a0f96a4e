"""Live push on a real server process in the shipped (eventlet) mode, seen by real Socket.IO clients.

The in-process tests (tests/api/test_socketio_push.py, tests/api/test_pushes.py) run on Flask-SocketIO's test
client in threading mode; these cover the same promises over a real websocket, and the dashboard's version reload
through a real restart.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import socketio

from devkit import servers
from devkit.servers import ServerProcess, wait_for
from tests.helpers.auth import bearer
from tests.helpers.browser import wait_state_is
from tests.helpers.config import ADMIN, TOKENS

pytestmark = pytest.mark.slow
EVENT = "donnees_utilisation"


class Dashboard:
    """A python-socketio client on the websocket transport, keeping every `donnees_utilisation` it receives."""

    def __init__(self, url: str):
        self.pushes: list[dict] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on(EVENT, self.pushes.append)
        self.client.connect(url, transports=["websocket"], wait_timeout=10)
        wait_for(lambda: self.pushes, 10, message="the figures on connect")

    def wait_count(self, count: int) -> list[dict]:
        """Wait until `count` pushes arrived in all; return them."""
        wait_for(lambda: len(self.pushes) >= count, 10, message=f"{count} pushes")
        return self.pushes


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """An eventlet server whose alert check runs once, at start: any later push comes from the request tested."""
    return server_factory(async_mode="eventlet", check_interval_s=3600)


@pytest.fixture
def dashboards() -> Iterator[Callable[[str], Dashboard]]:
    """dashboards(url) -> a connected Dashboard; all disconnected at teardown."""
    made: list[Dashboard] = []

    def connect(url: str) -> Dashboard:
        made.append(Dashboard(url))
        return made[-1]

    yield connect
    for board in made:
        board.client.disconnect()


def get(url: str) -> dict:
    return requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()


def post(url: str, body: object, dispenser: str | None = "entree") -> requests.Response:
    headers = bearer(TOKENS[dispenser]) if dispenser else {}
    return requests.post(url + "/mettre_a_jour_donnees", json=body, headers=headers, timeout=10)


def entry(payload: dict, ident: str) -> dict:
    return next(d for d in payload["dispensers"] if d["id"] == ident)


def test_a_dashboard_gets_the_get_payload_on_connect(server, dashboards):
    assert post(server.url, {"gel_used": 2.5, "hands_detected": 1}).status_code == 200
    board = dashboards(server.url)
    assert board.pushes == [get(server.url)]
    assert board.client.transport() == "websocket"


def test_each_accepted_post_is_pushed_once_with_exactly_the_get_payload(server, dashboards):
    board = dashboards(server.url)
    for n in (1, 2):
        assert post(server.url, {"gel_used": 1.5, "hands_detected": 1}).status_code == 200
        pushes = board.wait_count(1 + n)
        assert pushes[-1] == get(server.url) and pushes[-1]["hands_detected"] == n
    assert len(board.pushes) == 3  # one on connect, one per POST: the second POST found no extra push before it


def test_every_dashboard_gets_the_push(server, dashboards):
    boards = [dashboards(server.url) for _ in range(3)]
    assert post(server.url, {"gel_used": 2, "hands_detected": 1}, dispenser="b12").status_code == 200
    for board in boards:
        assert board.wait_count(2)[-1]["gel_used"] == 2


def test_rejected_posts_push_nothing(server, dashboards):
    board = dashboards(server.url)
    assert post(server.url, {"gel_used": -1}).status_code == 400
    assert post(server.url, {"gel_used": 1}, dispenser=None).status_code == 401
    assert post(server.url, {"gel_used": 1, "hands_detected": 1}).status_code == 200
    pushes = board.wait_count(2)
    # Pushes reach a client in order: had a rejected POST pushed, it would sit before the accepted one.
    assert [p["hands_detected"] for p in pushes] == [0, 1]


def test_an_offline_transition_is_pushed_without_any_post(server_factory, dashboards):
    server = server_factory(async_mode="eventlet", offline_after_s=1, check_interval_s=0.2)
    assert post(server.url, {"gel_used": 1, "hands_detected": 1}).status_code == 200
    board = dashboards(server.url)
    assert entry(board.pushes[0], "entree")["online"] is True
    wait_for(lambda: any(not entry(p, "entree")["online"] for p in board.pushes), 10, message="offline pushed")
    pushed = next(p for p in board.pushes if not entry(p, "entree")["online"])
    assert {"dispenser": "entree", "name": "Entrée", "kind": "offline"} in pushed["alerts"]
    assert pushed["hands_detected"] == 1  # nothing was posted in between


def test_a_heartbeat_bringing_a_dispenser_back_is_pushed_at_once(server_factory, dashboards):
    server = server_factory(async_mode="eventlet", check_interval_s=3600)  # only the heartbeat itself may push
    board = dashboards(server.url)
    assert entry(board.pushes[0], "b12")["online"] is False
    resp = requests.post(server.url + "/api/dispensers/b12/heartbeat", json={"backlog": 3, "version": "1.0.0"},
                         headers=bearer(TOKENS["b12"]), timeout=10)
    assert resp.status_code == 200
    b12 = entry(board.wait_count(2)[-1], "b12")
    assert (b12["online"], b12["backlog"], b12["version"]) == (True, 3, "1.0.0")


def test_a_refill_is_pushed(server, dashboards):
    assert post(server.url, {"gel_used": 100, "hands_detected": 1}, dispenser="b12").status_code == 200
    board = dashboards(server.url)
    assert entry(board.pushes[0], "b12")["level_pct"] == 80.0
    resp = requests.post(server.url + "/api/dispensers/b12/refill", headers=bearer(ADMIN), timeout=10)
    assert resp.status_code == 200
    b12 = entry(board.wait_count(2)[-1], "b12")
    assert b12["level_pct"] == 100.0 and b12["refilled_at"] is not None
    assert board.pushes[-1] == get(server.url)


def test_connected_dashboards_are_counted_in_the_metrics(server, dashboards):
    def gauge() -> float:
        text = requests.get(server.url + "/metrics", timeout=10).text
        return float(next(line.split()[1] for line in text.splitlines() if line.startswith("gel_dashboards_connected")))

    boards = [dashboards(server.url) for _ in range(2)]
    assert gauge() == 2
    boards[0].client.disconnect()
    wait_for(lambda: gauge() == 1, 10, message="the gauge back to one")


# --- the dashboard's version: a real restart with changed static files ------------------------------------------


@pytest.fixture
def app_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the server's code whose static files a test may change; servers started from it run it."""
    tree = tmp_path / "tree"
    shutil.copytree(servers.ROOT / "app", tree / "app", ignore=shutil.ignore_patterns("__pycache__"))
    for module in ("gel_toolkit.py",):
        if (servers.ROOT / module).exists():
            shutil.copy2(servers.ROOT / module, tree / module)
    # `python -m app` runs with the working directory first on sys.path: the copy wins over the checkout.
    monkeypatch.setattr(servers, "ROOT", tree)
    return tree


def version_of(url: str) -> str:
    return requests.get(url + "/api/version", timeout=10).json()["version"]


@pytest.mark.browser
def test_a_restart_with_new_static_files_reloads_the_kiosk_and_offers_a_reload_on_desktop(
        app_copy, write_config, open_page):
    server = ServerProcess(write_config(async_mode="eventlet"))
    server.start()
    try:
        before = version_of(server.url)
        kiosk, kiosk_rec = open_page(server.url + "/?kiosk=1", wait_state="live")
        desktop, _ = open_page(server.url + "/", wait_state="live")
        assert kiosk.get_attribute("html", "data-version") == before

        # Same files: a restart changes nothing on screen.
        server.stop()
        wait_state_is(kiosk, "offline", 15)
        wait_state_is(desktop, "offline", 15)
        with desktop.expect_response(lambda r: r.url.endswith("/api/version") and r.status == 200, timeout=20000):
            server.start()  # back online, the page asks for the version again
        assert version_of(server.url) == before
        wait_state_is(desktop, "live", 15)
        assert desktop.is_hidden("#reload-notice")

        # New static files: the kiosk reloads itself onto them, the desktop offers a reload.
        server.stop()
        wait_state_is(kiosk, "offline", 15)
        css = app_copy / "app" / "static" / "css" / "dashboard.css"
        css.write_text(css.read_text(encoding="utf-8") + "\n/* a new release */\n", encoding="utf-8")
        server.start()
        after = version_of(server.url)
        assert after != before
        kiosk.wait_for_function("v => document.documentElement.dataset.version === v", arg=after, timeout=20000)
        wait_state_is(kiosk, "live", 15)
        assert len([u for u in kiosk_rec.requests if u == server.url + "/?kiosk=1"]) == 2  # exactly one reload
        desktop.wait_for_selector("#reload-notice", state="visible", timeout=20000)
        assert desktop.get_attribute("html", "data-version") == before  # not reloaded behind the user's back
        with desktop.expect_navigation(timeout=10000):
            desktop.click("#reload-notice")
        assert desktop.get_attribute("html", "data-version") == after
    finally:
        server.stop()

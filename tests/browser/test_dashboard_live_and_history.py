"""The dashboard in headless Chromium against a real server: connection switches, long-polling only, an
older payload ignored, the history buttons, the `no_use` alert, litres, and dates in the server's zone."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.helpers.browser import normalized, post_use, wait_state_is, wait_value
from tests.helpers.rigs import Proxy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(150)]
DATA = "**/obtenir_donnees_utilisation*"


def get(url: str) -> dict:
    return requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()


class SocketGate:
    """Playwright routes for Socket.IO: websockets proxied to the server while open, refused (and the live ones
    dropped) while shut; long-polling requests likewise. The figures' GET is never touched."""

    def __init__(self, page: Any):
        self.websocket = self.polling = True
        self.sockets: list[Any] = []
        page.route_web_socket("**/socket.io/**", self._socket)
        page.route("**/socket.io/**", lambda route: route.continue_() if self.polling else route.abort())

    def _socket(self, ws: Any) -> None:
        if not self.websocket:
            ws.close()
            return
        ws.connect_to_server()  # a transparent proxy, both ways
        self.sockets.append(ws)

    def shut(self) -> None:
        """Refuse both transports and drop the websockets open now."""
        self.websocket = self.polling = False
        for ws in self.sockets:
            ws.close()
        self.sockets.clear()

    def open(self) -> None:
        self.websocket = self.polling = True


def test_live_then_polling_then_live_again(server, open_page):
    page, _ = open_page("about:blank")
    gate = SocketGate(page)
    page.goto(server.url + "/")
    wait_state_is(page, "live")
    gate.shut()
    wait_state_is(page, "polling", 15)  # the server still answers the GET: not offline
    post_use(server.url, 2.0, 1)
    wait_value(page, "hands-detected", 1, timeout_s=15)  # brought by the poll
    assert page.get_attribute("#connection-status", "data-state") == "polling"
    assert "5 s" in page.text_content("#connection-status")
    gate.open()
    wait_state_is(page, "live", 20)  # the socket's own reconnection, without a reload
    assert page.get_attribute("#connection-status", "data-transport") == "websocket"
    post_use(server.url, 2.0, 1)
    wait_value(page, "hands-detected", 2, timeout_s=15)


class NoWebsocketProxy:
    """A reverse proxy that passes plain HTTP (long-polling included) and refuses websocket upgrades with a 400,
    as some proxies do; one request per connection."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            request = Proxy._read_message(conn)
            head, _, body = request.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            if not request or any(line.lower().startswith(b"upgrade:") for line in lines):
                self.refused += bool(request)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            head = b"\r\n".join(line for line in lines if not line.lower().startswith(b"connection:"))
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60) as up:
                up.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
                while chunk := up.recv(65536):
                    conn.sendall(chunk)

    def close(self) -> None:
        self.listener.close()


def test_long_polling_only_is_live_and_gets_pushes(server, open_page):
    proxy = NoWebsocketProxy(server.port)
    try:
        page, _ = open_page(proxy.url + "/")
        page.wait_for_function("() => { const s = document.getElementById('connection-status');"
                               " return s.dataset.state === 'live' && s.dataset.transport === 'polling'; }",
                               timeout=20000)
        assert proxy.refused >= 1  # the websocket was tried, and refused
        # From now on the figures' GET fails: a new value can only come through the long-polling socket.
        page.route(DATA, lambda route: route.abort())
        post_use(server.url, 3.0, 1)
        wait_value(page, "hands-detected", 1, timeout_s=15)
        assert page.get_attribute("#connection-status", "data-state") == "live"
        assert page.get_attribute("#connection-status", "data-transport") == "polling"
    finally:
        proxy.close()


def test_an_older_payload_is_ignored(server, open_page):
    post_use(server.url, 5.0, 2)
    page, _ = open_page(server.url + "/", wait_state="live")
    wait_value(page, "gel-used", 5)
    stale = get(server.url)
    stale.update(gel_used=999, hands_detected=999)
    stale["updated_at"] = "2000-01-01T00:00:00.000Z"
    if isinstance(stale.get("seq"), int):
        stale["seq"] = 0
    served: list[str] = []

    def older_once(route: Any) -> None:
        if served:
            route.continue_()
            return
        served.append(route.request.url)  # a slow poll overtaken by newer figures
        route.fulfill(status=200, content_type="application/json", headers={"ETag": '"stale"'},
                      body=json.dumps(stale))

    page.route(DATA, older_once)
    # The stale answer, then the next poll, which can only start once that answer was taken (one poll at a time).
    for _ in range(2):
        with page.expect_request(lambda r: "/obtenir_donnees_utilisation" in r.url, timeout=15000):
            pass
    assert served
    assert page.get_attribute("#gel-used", "data-value") == "5"
    assert page.text_content("#hands-detected") == "2"
    post_use(server.url, 1.0, 1)  # newer figures still go through
    wait_value(page, "hands-detected", 3)


# The history chart shows `l` bars holding `e` doses in all.
HISTORY_SHOWS = """([l, e]) => { const c = window.Chart.getChart(document.getElementById('history-chart'));
    return !!c && c.data.labels.length === l && c.data.datasets[0].data.reduce((a, b) => a + b, 0) === e; }"""


def test_history_buttons(server_factory, open_page):
    zone = "Pacific/Kiritimati"  # +14: 25 hours from the browser's zone, so the two never share a date
    server = server_factory(async_mode="eventlet", timezone=zone)
    today = datetime.now(ZoneInfo(zone)).date()
    stamps = {0: datetime.now(ZoneInfo(zone)) - timedelta(seconds=1)}  # doses: one now, two 3 days ago at noon...
    stamps.update({d: datetime.combine(today - timedelta(days=d), datetime.min.time(), ZoneInfo(zone)).replace(hour=12)
                   for d in (3, 20)})
    body = [{"gel_used": 1, "hands_detected": 1, "timestamp": stamps[d].isoformat()}
            for d, n in ((0, 1), (3, 2), (20, 4)) for _ in range(n)]
    post_use(server.url, body=body)
    page, _ = open_page(server.url + "/", wait_state="live", timezone_id="Pacific/Pago_Pago")

    def pick(button: str, query: str, labels: int, events: int) -> None:
        with page.expect_response(lambda r: "/api/history?" in r.url and query in r.url, timeout=10000) as resp:
            page.click(f"[data-range=\"{button}\"]")
        assert resp.value.status == 200
        pressed = page.eval_on_selector_all("[data-range]", "bs => bs.map(b => [b.dataset.range, b.ariaPressed])")
        assert pressed == [[r, str(r == button).lower()] for r in ("today", "7d", "30d")]
        assert query in page.get_attribute("#csv-link", "href")
        page.wait_for_function(HISTORY_SHOWS, arg=[labels, events], timeout=10000)

    # Days are the server's, not the browser's.
    pick("7d", f"bucket=day&from={today - timedelta(days=6)}", 7, 3)
    pick("30d", f"bucket=day&from={today - timedelta(days=29)}", 30, 7)
    pick("today", f"bucket=hour&from={today}&to={today + timedelta(days=1)}", 24, 1)
    csv = requests.get(page.get_attribute("#csv-link", "href"), timeout=10)
    assert csv.status_code == 200 and csv.text.startswith("period_start,")


def noon_zone() -> str:
    """A fixed-offset zone where it is 12:xx now (see test_config_promises)."""
    offset = 12 - time.gmtime().tm_hour
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def test_the_no_use_alert(server_factory, open_page):
    server = server_factory(async_mode="eventlet", timezone=noon_zone(), opening_hours="10:00-14:00",
                            no_use_alert_min=5)
    ten_minutes_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    post_use(server.url, body={"gel_used": 1, "hands_detected": 1, "timestamp": ten_minutes_ago})
    page, rec = open_page(server.url + "/", wait_state="live")
    item = page.wait_for_selector("#alerts li[data-kind=no_use][data-dispenser=entree]", timeout=10000)
    assert "aucune utilisation récente" in item.text_content()
    assert page.is_visible("#alerts")
    assert "is-idle" in page.get_attribute(".dispenser[data-id=entree]", "class")
    assert not rec.errors


def test_litres_formatting(server, open_page):
    page, _ = open_page(server.url + "/", wait_state="live")
    post_use(server.url, 999.9, 1, dispenser="b12")
    wait_value(page, "gel-used", 999.9)
    assert normalized(page.text_content("#gel-used")) == "999,9 ml"
    post_use(server.url, 0.1, 1, dispenser="b12")
    wait_value(page, "gel-used", 1000)
    assert normalized(page.text_content("#gel-used")) == "1,00 L"
    post_use(server.url, 250, 1, dispenser="b12")
    wait_value(page, "gel-used", 1250)
    assert normalized(page.text_content("#gel-used")) == "1,25 L"
    assert normalized(page.text_content(".dispenser[data-id=b12] .figure-gel")) == "1,25 L"
    english, _ = open_page(server.url + "/?lang=en", wait_state="live")
    wait_value(english, "gel-used", 1250)
    assert normalized(english.text_content("#gel-used")) == "1.25 L"


def test_dates_are_shown_in_the_servers_zone(server_factory, open_page):
    # 25 hours apart: the two zones never agree on the hour, nor on the date.
    server = server_factory(async_mode="eventlet", timezone="Pacific/Kiritimati")
    post_use(server.url, 1.0, 1)
    page, _ = open_page(server.url + "/", wait_state="live", timezone_id="Pacific/Pago_Pago")
    wait_value(page, "hands-detected", 1)
    updated = get(server.url)["updated_at"]
    assert page.get_attribute("#last-update", "datetime") == updated
    local = datetime.fromisoformat(updated).astimezone(ZoneInfo("Pacific/Kiritimati"))
    assert page.text_content("#last-update") == local.strftime("%H:%M:%S")
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    page.wait_for_function("d => document.getElementById('csv-link').href.includes('from=' + d)", arg=str(today),
                           timeout=10000)  # "today" in the history is the server's day


DOT_ANIMATION = """() => { const s = getComputedStyle(document.querySelector('#connection-status .connection-dot'));
  return [s.animationName, s.animationIterationCount]; }"""


def test_the_live_dot_beats_a_few_times_then_rests_and_never_moves_for_reduced_motion(server, open_page):
    page, rec = open_page(server.url + "/", wait_state="live")
    # A few beats on going live, not an endless pulse that repaints the page every frame for as long as it is open.
    assert page.evaluate(DOT_ANIMATION) == ["pulse", "3"]
    still, _ = open_page(server.url + "/", wait_state="live", reduced_motion="reduce")
    assert still.evaluate(DOT_ANIMATION)[0] == "none"
    # Charts drawn without animation either: Chart.js reports the option it was given.
    still.wait_for_function("() => !!window.Chart.getChart(document.getElementById('realtime-chart'))")
    assert still.evaluate("() => window.Chart.getChart(document.getElementById('realtime-chart')).options.animation") \
        is False
    assert page.evaluate("() => window.Chart.getChart(document.getElementById('realtime-chart')).options.animation"
                         " !== false")
    assert not rec.errors, rec.errors

"""The real server process: HTTP, a real Socket.IO client, both async modes, crash durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from devkit.servers import ServerProcess, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, SERVER_MODES, TOKENS
from tests.helpers.rigs import Listener

pytestmark = pytest.mark.slow  # real server processes

AUTH = bearer(TOKENS['entree'])


def post(url: str, body, headers=AUTH) -> requests.Response:
    return requests.post(url + "/mettre_a_jour_donnees", json=body, headers=headers, timeout=10)


def get(url: str) -> dict:
    return requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_post_is_pushed_to_a_real_socketio_client(server_factory, mode):
    srv = server_factory(async_mode=mode, spawn=True, pinned=True)  # a fresh `python -m app`, each mode
    listener = Listener(srv.url)
    try:
        wait_for(lambda: listener.received, 10, message="payload on connect")
        assert listener.received[0] == get(srv.url)
        assert post(srv.url, {"gel_used": 1.5, "hands_detected": 1}).status_code == 200
        # This client only listens, so whatever arrives was pushed. How fast is measured by `make bench`; the
        # 15 s here only keeps a broken push from hanging the test on a loaded machine.
        wait_for(lambda: len(listener.received) >= 2, 15, interval=0.005, message="push after POST")
        assert listener.received[-1] == get(srv.url)
        assert listener.received[-1]["hands_detected"] == 1
    finally:
        listener.close()


def test_kill_9_keeps_every_acknowledged_event(server):
    acked: list[str] = []
    stop = threading.Event()

    def stream(worker: int) -> None:
        n = 0
        while not stop.is_set():
            event_id = f"w{worker}-{n}"
            try:
                r = post(server.url, {"gel_used": 1, "hands_detected": 1, "event_id": event_id})
            except requests.RequestException:
                return
            if r.status_code == 200:
                acked.append(event_id)
            n += 1

    workers = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    wait_for(lambda: len(acked) >= 60, 20, message="acknowledged events")
    server.kill()
    stop.set()
    for w in workers:
        w.join(10)
    server.start()
    data = get(server.url)
    # Every acknowledged event survived, and nothing was counted twice (an unacknowledged one may also be there).
    assert len(acked) <= data["hands_detected"] <= len(acked) + len(workers)
    again = post(server.url, [{"gel_used": 1, "hands_detected": 1, "event_id": e} for e in acked[:1000]])
    assert again.json()["accepted"] == 0


def test_healthz_and_dashboard_are_served(server):
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    page = requests.get(server.url + "/", timeout=5)
    assert page.status_code == 200 and 'id="gel-used"' in page.text


SERVED_BY = {"eventlet": ("eventlet.wsgi", "eventlet"), "gevent": ("gevent.pywsgi", "gevent"),
             "threading": ("gunicorn gthread", "threads")}


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_each_async_mode_really_runs_as_configured(server_factory, mode):
    """Flask-SocketIO would pick eventlet by itself whenever it is importable: the configured stack is the one used."""
    srv = server_factory(async_mode=mode, pinned=True)
    text = requests.get(srv.url + "/metrics", timeout=10).text
    server, stack = SERVED_BY[mode]
    assert f'gel_server_info{{async_mode="{mode}",server="{server}",stack="{stack}"}} 1.0' in text, text[-800:]
    assert f"serving with {server} (async_mode {mode})" in srv.log()
    workers = [int(c) for task in Path(f"/proc/{srv.proc.pid}/task").iterdir()
               for c in (task / "children").read_text().split()]
    assert len(workers) == (1 if mode == "threading" else 0)  # gunicorn's arbiter and its one worker
    assert post(srv.url, {"gel_used": 1.5, "hands_detected": 1}).status_code == 200


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_no_secret_sent_to_the_server_is_ever_logged(server_factory, mode):
    """At DEBUG every request line is logged: no secret sent, known or unknown, in a header or a query, appears."""
    srv = server_factory(async_mode=mode, log_level="DEBUG", spawn=True, pinned=True)
    unknown = ["not-a-real-token-5f3a9c", "guessed-token-77e1b0", "query-token-c0ffee"]
    post(srv.url, {"gel_used": 1, "hands_detected": 1})
    post(srv.url, {"gel_used": 1}, headers=bearer(unknown[0]))
    post(srv.url, {"gel_used": 1}, headers={"Authorization": f"Basic {unknown[1]}"})
    requests.get(srv.url + "/metrics", headers=bearer(ADMIN), timeout=5)
    requests.get(srv.url + f"/obtenir_donnees_utilisation?x={TOKENS['b12']}&token={unknown[2]}", timeout=5)
    requests.get(srv.url + f"/api/history?token={ADMIN}&t2={TOKENS['cafeteria']}", timeout=5)
    requests.post(srv.url + f"/api/dispensers/entree/refill?token={TOKENS['entree']}", timeout=5)
    srv.stop()
    log = srv.log()
    # The request lines are there, so a secret in them would be seen: the test can fail.
    assert "/obtenir_donnees_utilisation?x=" in log and "/api/history?token=" in log, log[-3000:]
    assert "ingest dispenser=entree" in log
    for secret in [*TOKENS.values(), ADMIN, *unknown]:
        assert secret not in log, secret


def polled_sockets(pid: int) -> tuple[set[int], set[int]]:
    """(the inodes every epoll of process `pid` watches, the inodes of the sockets and pipes `pid` has open)."""
    watched, own = set(), set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith(("socket:[", "pipe:[")):  # a pipe: the SIGHUP wake-up the reload task reads
                own.add(int(link.split("[")[1][:-1]))
            elif link == "anon_inode:[eventpoll]":
                for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
                    if line.startswith("tfd:"):
                        watched.add(int(line.split("ino:")[1].split()[0], 16))
        except FileNotFoundError:  # a connection closed meanwhile
            continue
    return watched, own


def test_forked_eventlet_servers_each_poll_their_own_sockets(write_config):
    """Two servers from one zygote (devkit/zygote.py) share no event hub: each epoll watches its own sockets."""
    servers = [ServerProcess(write_config(async_mode="eventlet"), async_mode="eventlet").start() for _ in range(2)]
    try:
        for server in servers:
            assert post(server.url, {"hands_detected": 1}).status_code == 200
            # Connections come and go while /proc is read: wait for a reading where every watched socket is its own.
            # A shared hub watches the other server's listening socket for good.
            wait_for(lambda pid=server.proc.pid: (lambda w, o: w and w <= o)(*polled_sockets(pid)), 10,
                     message="an epoll watching only the server's own sockets")
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize("mode", SERVER_MODES)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_forked_server_ends_as_a_spawned_one(write_config, mode, sig):
    """The zygote's servers (devkit/zygote.py) behave as `python -m app` at the end: exit status and log."""
    ended = {}
    for spawn in (False, True):
        server = ServerProcess(write_config(async_mode=mode), spawn=spawn, async_mode=mode).start()
        assert post(server.url, {"hands_detected": 1}).status_code == 200
        pid = server.proc.pid
        server.proc.send_signal(sig)
        ended[spawn] = server.proc.wait(10)
        assert not Path(f"/proc/{pid}").exists()  # reaped, not left a zombie
        assert "Warning" not in server.log(), server.log()
    assert ended[False] == ended[True], ended
    refused = {}
    for spawn in (False, True):
        server = ServerProcess(write_config(async_mode=mode, port=70000), spawn=spawn, async_mode=mode)
        with pytest.raises(AssertionError, match="exited with 2") as failure:
            server.start()
        refused[spawn] = str(failure.value).split("exited with 2: ", 1)[1].strip()
    assert refused[False] == refused[True] == "error: [server] port must be an integer from 0 to 65535", refused


BUSY_PATCHED_THREAD = """
import sys, threading, time
from app.serve.green import interrupt_main_on_sigint, patch
patch(sys.argv[1])
sleep = __import__("eventlet" if sys.argv[1] == "eventlet" else "gevent").sleep

def busy():  # a patched thread that runs Python code most of the time, as a busy server's threads do
    print("ready", flush=True)  # from the busy thread: the signal then lands while it runs
    while True:
        began = time.time()
        while time.time() - began < 0.05:
            pass
        sleep(0.001)

interrupt_main_on_sigint(sys.argv[1])
threading.Thread(target=busy, daemon=True).start()
while True:
    sleep(1)
"""


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_sigint_ends_a_green_server_even_while_a_patched_thread_runs(mode):
    """Without interrupt_main_on_sigint the KeyboardInterrupt lands in the busy thread, which swallows it."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY_PATCHED_THREAD, mode], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == -signal.SIGINT  # as an uncaught KeyboardInterrupt ends any Python program
    finally:
        proc.kill()
        proc.wait()

"""The `notify` step: alerts that leave the screen cost a use nothing, and reach a receiver within a second.

Two servers of 1,000 dispensers side by side, one with MQTT (the machine's Mosquitto), two signed webhooks and an
Apprise target (local receivers), one with none: single-event POSTs/s (wrk, interleaved rounds). Then the MQTT
messages one use costs, and the time from the write that raises an alert to the webhook receiving it, less
`settle_s` (one dispenser pushed under its low level, again and again).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import requests

from bench.common import median, now_iso, wrk
from bench.context import RUN, Unavailable, token, write_config
from devkit.servers import ServerProcess, wait_for

if TYPE_CHECKING:
    from bench.context import Bench

N = int(os.environ.get("BENCH_NOTIFY_DISPENSERS", "1000"))
REPS, WRK_S = 3, 3
SETTLE_S = 0.5
ALERTS = 20  # alert raise -> webhook samples
SECRET = "whsec_" + base64.b64encode(b"bench-notify-secret-32-bytes-long").decode()


class Receiver:
    """A local HTTP receiver noting when the first raised alert of each dispenser arrived."""

    def __init__(self) -> None:
        self.raised: dict[str, float] = {}
        box = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if event["type"] == "alert.raised":
                    box.raised.setdefault(event["data"]["dispenser"], time.time())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def broker() -> None:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError as exc:
        raise Unavailable(f"no MQTT broker on 127.0.0.1:1883: {exc}") from None


def outlets(receivers: list[Receiver], base: str) -> str:
    """The config lines of two webhooks, one Apprise target and MQTT."""
    text = (f'\n[server.mqtt]\nurl = "mqtt://127.0.0.1:1883"\nbase_topic = "{base}"\n'
            f'discovery_prefix = "{base}-ha"\n')
    for i, r in enumerate(receivers[:2]):
        text += f'\n[[server.notify]]\nid = "hook{i}"\nwebhook = "{r.url}/hook"\nsecret = "{SECRET}"\n'
    return text + f'\n[[server.notify]]\nid = "people"\napprise = "json://{receivers[2].url[7:]}/ntfy"\n'


def start(b: Bench, name: str, extra: str) -> ServerProcess:
    config = write_config(RUN / f"notify-{name}", "usage.db", n=N)
    # Reservoirs of 1,000 l: "low" under 99.95 %, so that one use of a litre raises it (the load's 1.5 ml uses
    # never do); nobody offline during the step (most dispensers are never heard from).
    keys = f"settle_s = {SETTLE_S}\nlow_level_pct = 99.95\noffline_after_s = 3600\n"
    text = config.read_text().replace("[server]\n", "[server]\n" + keys, 1)
    config.write_text(text + extra)
    srv = ServerProcess(config)
    b.running[f"notify-{name}"] = srv
    return srv.start(60)


def messages_per_use(url: str, base: str) -> float:
    """MQTT messages published for one use of d000 (its state and its groups': none here), over 5 uses 1.2 s apart."""
    import paho.mqtt.client as mqtt

    got: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(m.topic)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    client.subscribe(f"{base}/#")
    time.sleep(1.5)  # the retained states of every dispenser arrive first: a baseline, not a use's cost
    before = len(got)
    for _ in range(5):
        requests.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5}, headers={"Authorization":
                      f"Bearer {token(1)}"}, timeout=10)
        time.sleep(1.2)  # past the one-a-second coalescing: each use is its own message
    client.loop_stop()
    client.disconnect()
    return (len(got) - before) / 5


def alert_latency(url: str, receiver: Receiver) -> list[float]:
    """Seconds from the use that takes a dispenser under its low level to the webhook's raise, less settle_s.

    One dispenser per sample (a reservoir is refilled at most once a minute: no refill between samples).
    """
    samples = []
    for i in range(ALERTS):
        t0 = time.time()
        answer = requests.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1000},
                               headers={"Authorization": f"Bearer {token(i)}"}, timeout=10)
        answer.raise_for_status()
        wait_for(lambda d=f"d{i:03d}": d in receiver.raised, 15, message="the webhook")
        samples.append(receiver.raised[f"d{i:03d}"] - t0 - SETTLE_S)
    return samples


def step(b: Bench) -> None:
    """POSTs/s with and without the outlets; MQTT messages per use; alert-to-webhook latency."""
    broker()
    receivers = [Receiver() for _ in range(3)]
    base = f"gelbench{os.getpid()}"
    servers = {"none": start(b, "none", ""), "outlets": start(b, "outlets", outlets(receivers, base))}
    fig: dict[str, Any] = {"date": now_iso(), "dispensers": N, "settle_s": SETTLE_S}
    runs: dict[str, list] = {k: [] for k in servers}
    for rep in range(REPS):
        for k, srv in list(servers.items())[::-1 if rep % 2 else 1]:
            runs[k].append(wrk(srv.url + "/mettre_a_jour_donnees", "post.lua", (f"n{rep}{k}", "1", str(N)), WRK_S))
    fig["post"] = {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in runs.items()}
    fig["mqtt_messages_per_use"] = messages_per_use(servers["outlets"].url, base)
    lat = sorted(alert_latency(servers["outlets"].url, receivers[0]))
    fig["alert_to_webhook_s"] = {"p50": lat[len(lat) // 2], "p99": lat[-1], "samples": lat}
    for r in receivers:
        r.server.shutdown()
    b.fig["notify"] = fig

"""`make demo NOTIFY=1`: the demo's alerts leave the screen, to a webhook receiver in this process and to MQTT.

The config served is a copy (instance/notify/config.toml) with a signed webhook to a receiver on a free port,
whose deliveries are printed one line each, and `[server.mqtt]` when a broker answers on 127.0.0.1:1883.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BROKER = ("127.0.0.1", 1883)


def broker_answers() -> bool:
    """True when an MQTT broker listens on 127.0.0.1:1883 (Mosquitto, say)."""
    try:
        with socket.create_connection(BROKER, timeout=0.5):
            return True
    except OSError:
        return False


def start_receiver(secret: str, show: Any) -> ThreadingHTTPServer:
    """A webhook receiver on a free loopback port: checks each signature and shows one line per delivery."""
    from standardwebhooks.webhooks import Webhook

    verifier = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                data = event["data"]
                show(f"webhook {event['type']}: {data.get('name', '')} {data.get('kind', data.get('text', ''))} "
                     f"(signature ok, id {self.headers['webhook-id'][:12]}…)")
                self.send_response(204)
            except Exception as exc:  # a bad signature is shown, not fatal to the demo
                show(f"webhook refused: {exc}")
                self.send_response(400)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver


def notify_config(config: Path, instance: Path, show: Any) -> tuple[Path, ThreadingHTTPServer]:
    """The config to serve: `config` with a webhook to a new receiver (and MQTT if a broker answers)."""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = start_receiver(secret, show)
    port = receiver.server_address[1]
    text = config.read_text(encoding="utf-8")
    # Alerts told after 5 s instead of a minute, and a reservoir "low" after a few doses, so that the demo shows
    # deliveries while you watch.
    for key, value in (("settle_s", "5"), ("low_level_pct", "99")):
        text, found = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text, count=1)
        if not found:
            text = text.replace("[server]\n", f"[server]\n{key} = {value}\n", 1)
    text += f'\n[[server.notify]]\nid = "demo-webhook"\nwebhook = "http://127.0.0.1:{port}/hook"\nsecret = "{secret}"\n'
    if broker_answers():
        text += '\n[server.mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'
        show("MQTT: publishing to 127.0.0.1:1883 (mosquitto_sub -t 'gel/#' -v to watch)")
    folder = instance / "notify"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(text.replace('database = "sqlite:///instance/', f'database = "sqlite:///{config.parent}/instance/'),
                    encoding="utf-8")
    show(f"webhook receiver: http://127.0.0.1:{port}/hook (for the demo: low under 99 %, told after 5 s)")
    return path, receiver



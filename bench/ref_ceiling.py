"""Reference "ceiling": Flask-SocketIO whose handlers do no work (memory only, one emit per POST), in one mode.

`--mode` is the server stack, as the project's `async_mode`: eventlet (its WSGI server), gevent (gevent's pywsgi)
or threading (gunicorn's gthread worker, one process, as the project serves it). Each mode's project figures are
compared with that mode's ceiling.

`--push full` emits the whole payload after each POST; `--push delta` emits what a project that sends deltas
sends: the totals and one changed dispenser's entry. The bench picks the mode the project uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# The stack is patched before Flask loads, so it is read from the command line before anything else.
MODE = sys.argv[sys.argv.index("--mode") + 1] if "--mode" in sys.argv else "eventlet"
if MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

from flask import Flask, Response, request  # noqa: E402
from flask_socketio import SocketIO, emit  # noqa: E402
from socketio.packet import EVENT as EVENT_PACKET  # noqa: E402
from socketio.packet import Packet  # noqa: E402

EVENT = "donnees_utilisation"
DELTA = "donnees_delta"


class Encoded:
    """The last payload and its compact JSON text: each payload is encoded once, however many emits carry it."""

    def __init__(self) -> None:
        self.payload: dict | None = None
        self.text = ""

    def of(self, payload: dict) -> str:
        """The JSON text of `payload`, encoded on first use."""
        if payload is not self.payload:
            self.text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            self.payload = payload
        return self.text


encoded = Encoded()


class CachedPacket(Packet):
    """The project's packet encoding (app's serializer): no walk looking for bytes, the figures' JSON text reused.

    A ceiling that walked and re-encoded the 35 KB payload on every emit would be slower than a real do-nothing
    server with the same encoder, and the project's push ratios against it would look better than they are.
    """

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        """The figures never hold bytes; anything else is checked as usual."""
        if isinstance(data, list) and len(data) == 2 and data[0] in (EVENT, DELTA):
            return False
        return super().data_is_binary(data)

    def encode(self) -> Any:
        """The figures' event from the cached JSON text; other packets as usual."""
        data = self.data
        if (self.packet_type == EVENT_PACKET and self.id is None and self.namespace in (None, "/")
                and isinstance(data, list) and len(data) == 2 and data[0] in (EVENT, DELTA)
                and isinstance(data[1], dict)):
            return f'{EVENT_PACKET}["{data[0]}",{encoded.of(data[1])}]'
        return super().encode()


app = Flask(__name__)
socketio = SocketIO(app, async_mode=MODE, cors_allowed_origins="*", serializer=CachedPacket)
state = {"gel_used": 0.0, "hands_detected": 0}
# Same shape and size as the project's payload (loaded once), so pushes carry as many bytes.
template: dict = {}
current: dict[str, dict] = {"payload": {}}
mode = {"push": "full"}


def payload() -> dict:
    """The payload of the current counters, one object per change (as the project builds one per commit)."""
    return current["payload"]


def count() -> None:
    """One use: the counters move and a new payload object carries them."""
    state["hands_detected"] += 1
    state["gel_used"] += 1.5
    current["payload"] = {**template, **state}


def delta() -> dict:
    """The totals and one dispenser's entry, in turn (the shape of the project's delta for one use)."""
    n = state["hands_detected"]
    entries = template.get("dispensers") or [{}]
    return {"base": n - 1, "seq": n, **state, "updated_at": template.get("updated_at"),
            "dispensers": [entries[n % len(entries)]], "removed": [], "groups": []}


@app.get("/obtenir_donnees_utilisation")
def obtenir_donnees_utilisation() -> Response:
    """A plain GET returning the counter."""
    return Response(json.dumps(state), mimetype="application/json")


@app.post("/mettre_a_jour_donnees")
def mettre_a_jour_donnees() -> Response:
    """Count the POST in memory and emit once."""
    request.get_data()
    count()
    if mode["push"] == "delta":
        socketio.emit(DELTA, delta())
    else:
        socketio.emit(EVENT, payload())
    return Response(json.dumps({"message": "ok", **state}), mimetype="application/json")


@socketio.on("connect")
def on_connect(auth: object = None) -> None:
    """Send the figures at once, like the project does."""
    emit(EVENT, payload())


def serve_green(port: int) -> None:
    """eventlet's or gevent's server on a listener with TCP_NODELAY, as the project's (app/serve/green.py)."""
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    if MODE == "eventlet":
        import eventlet.wsgi

        eventlet.wsgi.server(sock, app, log_output=False)
    else:
        from gevent.pywsgi import WSGIServer

        WSGIServer(sock, app, log=None).serve_forever()


def serve_threads(port: int, threads: int = 2100) -> None:
    """gunicorn's gthread worker, one process: a thread per websocket (1,000 in the bench) plus the requests."""
    from gunicorn.app.base import BaseApplication

    class Ceiling(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"127.0.0.1:{port}", "worker_class": "gthread", "workers": 1,
                               "threads": threads, "worker_connections": threads, "loglevel": "warning"}.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Ceiling().run()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--payload", help="a JSON file with the project's payload (shape and size)")
    ap.add_argument("--push", choices=("full", "delta"), default="full", help="what each POST emits")
    ap.add_argument("--mode", choices=("eventlet", "gevent", "threading"), default="eventlet", help="the stack")
    args = ap.parse_args()
    mode["push"] = args.push
    if args.payload:
        with open(args.payload, encoding="utf-8") as f:
            template.update(json.load(f))
    current["payload"] = {**template, **state}
    if MODE == "threading":
        serve_threads(args.port)
    else:
        serve_green(args.port)

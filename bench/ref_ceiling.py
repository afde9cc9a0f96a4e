"""Reference "ceiling": Flask-SocketIO on eventlet whose handlers do no work (memory only, one emit per POST)."""

from __future__ import annotations

import argparse
import json

import eventlet

eventlet.monkey_patch()

from flask import Flask, Response, request  # noqa: E402
from flask_socketio import SocketIO, emit  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet", cors_allowed_origins="*")
state = {"gel_used": 0.0, "hands_detected": 0}
# Same shape and size as the project's payload (loaded once), so pushes carry as many bytes.
template: dict = {}


def payload() -> dict:
    """The template with the live counters."""
    return {**template, **state}


@app.get("/obtenir_donnees_utilisation")
def obtenir_donnees_utilisation() -> Response:
    """A plain GET returning the counter."""
    return Response(json.dumps(state), mimetype="application/json")


@app.post("/mettre_a_jour_donnees")
def mettre_a_jour_donnees() -> Response:
    """Count the POST in memory and emit once."""
    request.get_data()
    state["hands_detected"] += 1
    state["gel_used"] += 1.5
    socketio.emit("donnees_utilisation", payload())
    return Response(json.dumps({"message": "ok", **state}), mimetype="application/json")


@socketio.on("connect")
def on_connect(auth: object = None) -> None:
    """Send the figures at once, like the project does."""
    emit("donnees_utilisation", payload())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--payload", help="a JSON file with the project's payload (shape and size)")
    args = ap.parse_args()
    if args.payload:
        with open(args.payload, encoding="utf-8") as f:
            template.update(json.load(f))
    socketio.run(app, host="127.0.0.1", port=args.port, log_output=False)

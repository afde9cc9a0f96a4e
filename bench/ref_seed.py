"""Reference "seed": the original in-memory Flask server with its two routes, run with app.run()."""

from __future__ import annotations

import argparse
import logging

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
donnees = {"gel_used": 0.0, "hands_detected": 0}


@app.get("/obtenir_donnees_utilisation")
def obtenir_donnees_utilisation() -> Response:
    """The counters."""
    return jsonify(donnees)


@app.post("/mettre_a_jour_donnees")
def mettre_a_jour_donnees() -> Response:
    """Add the posted increments."""
    data = request.get_json()
    donnees["gel_used"] += data.get("gel_used", 0)
    donnees["hands_detected"] += data.get("hands_detected", 0)
    return jsonify({"message": "Données mises à jour avec succès"})


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=5000)
    port = ap.parse_args().port
    # Request logging off so the seed is not slowed by its console (a more demanding reference).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host="127.0.0.1", port=port)  # werkzeug, threaded (the default)

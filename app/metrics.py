"""GET /metrics in the Prometheus text format (prometheus-client), one registry per app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from app.store.outbox import pending_counts
from app.store.retention import database_bytes

REJECT_REASONS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  413: "too_large", 415: "unsupported_media_type", 429: "rate_limited"}


class UsageCollector:
    """Per-dispenser figures read from the store at scrape time, so every process reports the truth."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The per-dispenser gauges, from the same figures the dashboards show."""
        payload = self.app.extensions["figures"].payload()
        families = {
            "gel_used_ml": GaugeMetricFamily("gel_dispenser_gel_used_ml", "Gel used in total (ml)",
                                             labels=["dispenser"]),
            "hands_detected": GaugeMetricFamily("gel_dispenser_hands_detected", "Hands served in total",
                                                labels=["dispenser"]),
            "level_pct": GaugeMetricFamily("gel_dispenser_level_pct", "Reservoir level (%)",
                                           labels=["dispenser"]),
            "online": GaugeMetricFamily("gel_dispenser_online", "1 if heard from recently",
                                        labels=["dispenser"]),
            "missed": GaugeMetricFamily("gel_dispenser_missed_presences", "Presences that gave no dose",
                                        labels=["dispenser"]),
        }
        for d in payload["dispensers"]:
            values = {"gel_used_ml": d["gel_used"], "hands_detected": d["hands_detected"],
                      "level_pct": d["level_pct"], "online": int(d["online"]), "missed": d["missed"]}
            for key, family in families.items():
                family.add_metric([d["id"]], values[key])
        yield from families.values()


class PendingCollector:
    """Notifications waiting per target, read from the outbox at scrape time (any process sees them all)."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """`gel_notifications_pending{target}`, 0 for a target with nothing waiting."""
        family = GaugeMetricFamily("gel_notifications_pending", "Notifications not yet delivered", labels=["target"])
        waiting = pending_counts(self.app.extensions["usage_store"])
        for target in self.app.extensions["usage_config"].targets():
            family.add_metric([target.id], waiting.get(target.id, 0))
        yield family


class Metrics:
    """The counters the routes update."""

    def __init__(self, app: Flask):
        self.registry = CollectorRegistry()
        self.ingested = Counter("gel_events_ingested", "Events stored", ["dispenser"], registry=self.registry)
        self.duplicates = Counter("gel_events_duplicate", "Events already stored (retries)", ["dispenser"],
                                  registry=self.registry)
        self.rejected = Counter("gel_requests_rejected", "Requests refused, by reason", ["reason"],
                                registry=self.registry)
        self.server = Info("gel_server", "The stack serving this process: async_mode, WSGI server, what socket is",
                           registry=self.registry)
        self.dashboards = Gauge("gel_dashboards_connected", "Socket.IO clients connected to this process",
                                registry=self.registry)
        self.latency = Histogram("gel_request_duration_seconds", "Request latency", ["endpoint"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.registry.register(UsageCollector(app))
        self.registry.register(PendingCollector(app))
        self.notifications_sent = Counter("gel_notifications_sent", "Notifications delivered", ["target"],
                                          registry=self.registry)
        self.notifications_failed = Counter("gel_notifications_failed", "Notification tries that failed",
                                            ["target"], registry=self.registry)
        store = app.extensions["usage_store"]
        self.database_bytes = Gauge("gel_database_bytes", "Size of the database on disk (SQLite file and WAL)",
                                    registry=self.registry)
        self.database_bytes.set_function(lambda: database_bytes(store))


def get_metrics() -> Metrics:
    """The metrics of the current app."""
    return current_app.extensions["usage_metrics"]


def init_metrics(app: Flask) -> None:
    """Time every request, count rejections and serve /metrics."""
    metrics = app.extensions["usage_metrics"] = Metrics(app)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    latency_of: dict[str, Any] = {}  # the labelled child per endpoint: .labels() takes a lock and builds keys

    @app.after_request
    def _observe(resp: Response) -> Response:
        endpoint = request.endpoint or "unknown"
        if "started" in g:
            child = latency_of.get(endpoint)
            if child is None:
                child = latency_of[endpoint] = metrics.latency.labels(endpoint)
            child.observe(time.perf_counter() - g.started)
        if request.method == "POST" and resp.status_code in REJECT_REASONS:
            metrics.rejected.labels(REJECT_REASONS[resp.status_code]).inc()
        return resp

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        # The classic text format that generate_latest() writes; content_type, since a mimetype gets a charset added.
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)

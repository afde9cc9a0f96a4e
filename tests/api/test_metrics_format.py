"""/metrics answers in Prometheus' text format with its exact Content-Type (one charset, not two)."""

from __future__ import annotations

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4


def test_metrics_content_type_is_exactly_prometheus_text_format(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest() writes
    assert resp.headers["Content-Type"].count("charset") == 1

"""The notify step's rows in the goals table, from results.json."""

from __future__ import annotations


def rows(fig: dict) -> list[tuple[str, str, str, float | None, float, str]]:
    """The notify step's rows of the goals table."""
    n = fig["notify"]
    if "error" in n:
        return [("Notifications: POSTs/s with MQTT, 2 webhooks, 1 Apprise target", f"not measured: {n['error']}",
                 ">= 0.9x none", None, 0.9, ">=")]
    ratio = n["post"]["outlets"]["rps"] / n["post"]["none"]["rps"]
    lat = n["alert_to_webhook_s"]
    return [
        (f"{n['dispensers']:,} dispensers, single-event POSTs/s with MQTT, 2 webhooks and 1 Apprise target",
         f"{n['post']['outlets']['rps']:.0f}/s (none: {n['post']['none']['rps']:.0f}/s)", ">= 0.9x none", ratio, 0.9,
         ">="),
        ("MQTT messages per use (no group above the dispenser)", f"{n['mqtt_messages_per_use']:.1f}",
         "1 + its groups", n["mqtt_messages_per_use"], 1.0, "<="),
        ("Alert -> webhook receiver, beyond settle_s, p99",
         f"{lat['p99'] * 1000:.0f} ms (p50 {lat['p50'] * 1000:.0f} ms)", "<= 1 s", lat["p99"], 1.0, "<="),
    ]

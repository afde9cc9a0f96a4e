"""Home Assistant MQTT discovery: one device per dispenser and per group, and the server they come through.

Device-based discovery (`<prefix>/device/<id>/config`, its entities under `components`), full key names, an
`origin` block, `default_entity_id` (not the `object_id` Home Assistant no longer honours), stable `unique_id`s.
"""

from __future__ import annotations

from typing import Any

from app.config import ServerConfig

SERVER_ID = "gel_server"


def slug(ident: str) -> str:
    """An id as Home Assistant's entity ids take it: lower case, `_` for anything else."""
    return "".join(c if c.isalnum() else "_" for c in ident.lower())


def sensor(name: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"platform": "sensor", "name": name, "value_template": f"{{{{ value_json.{key} }}}}", **extra}


def binary(name: str, key: str, device_class: str) -> dict[str, Any]:
    return {"platform": "binary_sensor", "name": name, "device_class": device_class,
            "value_template": f"{{{{ 'ON' if value_json.{key} else 'OFF' }}}}", "payload_on": "ON",
            "payload_off": "OFF"}


def origin(cfg: ServerConfig, version: str) -> dict[str, str]:
    """Who publishes the configs; its support page is the dashboard, when its address is known."""
    found = {"name": "gel-dispenser", "sw_version": version}
    if cfg.public_url:
        found["support_url"] = cfg.public_url
    return found


def dispenser_config(cfg: ServerConfig, entry: dict[str, Any], version: str) -> tuple[str, dict[str, Any]]:
    """(topic, config) of one dispenser's device and entities."""
    base = cfg.mqtt.base_topic
    ident = entry["id"]
    node = f"gel_{slug(ident)}"
    parts: dict[str, dict[str, Any]] = {
        "level": sensor("Niveau", "level_pct", unit_of_measurement="%", state_class="measurement",
                        icon="mdi:cup-water"),
        "gel_used": sensor("Gel utilisé", "gel_used", unit_of_measurement="mL", device_class="volume",
                           state_class="total_increasing"),
        "hands": sensor("Mains", "hands_detected", state_class="total_increasing", icon="mdi:hand-wash"),
        "online": binary("En ligne", "online", "connectivity"),
        "low": binary("Réservoir bas", "low", "problem"),
        "stuck": binary("Capteur bloqué", "stuck", "problem"),
        "empty_at": sensor("Vide vers", "empty_at", device_class="timestamp"),
        "missed": sensor("Présences manquées", "missed", state_class="total_increasing"),
    }
    if entry.get("entries"):
        parts["entries"] = sensor("Passages", "entries", state_class="total_increasing", icon="mdi:door")
    components = {}
    for key, part in parts.items():
        domain = part["platform"]
        components[f"{node}_{key}"] = {**part, "unique_id": f"{node}_{key}",
                                       "default_entity_id": f"{domain}.{node}_{key}"}
    fleet = cfg.fleet
    group = fleet.group_of.get(ident)
    device = {"identifiers": [node], "name": entry["name"], "manufacturer": "gel-dispenser",
              "model": "Distributeur de gel sans contact", "via_device": SERVER_ID}
    if entry.get("version"):
        device["sw_version"] = entry["version"]
    if group is not None:
        device["suggested_area"] = fleet.groups[group].name
    config = {"device": device, "origin": origin(cfg, version), "components": components,
              "state_topic": f"{base}/{ident}/state", "availability_topic": f"{base}/status", "qos": 1}
    return f"{cfg.mqtt.discovery_prefix}/device/{node}/config", config


def group_config(cfg: ServerConfig, group: str, version: str) -> tuple[str, dict[str, Any]]:
    """(topic, config) of one group's device: its use and its open alerts."""
    node = f"gel_group_{slug(group)}"
    decl = cfg.fleet.groups[group]
    parts = {
        "gel_used": sensor("Gel utilisé", "gel_used", unit_of_measurement="mL", device_class="volume",
                           state_class="total_increasing"),
        "hands": sensor("Mains", "hands_detected", state_class="total_increasing", icon="mdi:hand-wash"),
        "alerts": sensor("Alertes", "alerts", state_class="measurement", icon="mdi:alert"),
        "hands_today": sensor("Mains aujourd'hui", "hands_today", state_class="measurement", icon="mdi:hand-wash"),
        "gel_today": sensor("Gel aujourd'hui", "gel_today_ml", unit_of_measurement="mL", device_class="volume",
                            state_class="measurement"),
        "compliance_today": sensor("Conformité aujourd'hui", "compliance_today_pct", unit_of_measurement="%",
                                   state_class="measurement"),
        "dispensers": sensor("Distributeurs", "dispensers", state_class="measurement"),
    }
    components = {f"{node}_{k}": {**p, "unique_id": f"{node}_{k}", "default_entity_id": f"sensor.{node}_{k}"}
                  for k, p in parts.items()}
    device = {"identifiers": [node], "name": decl.name, "manufacturer": "gel-dispenser", "model": "Groupe",
              "via_device": SERVER_ID, "suggested_area": decl.name}
    return f"{cfg.mqtt.discovery_prefix}/device/{node}/config", {
        "device": device, "origin": origin(cfg, version), "components": components,
        "state_topic": f"{cfg.mqtt.base_topic}/group/{group}/state",
        "availability_topic": f"{cfg.mqtt.base_topic}/status", "qos": 1}


def server_config(cfg: ServerConfig, version: str) -> tuple[str, dict[str, Any]]:
    """(topic, config) of the server's own device, which every dispenser comes through."""
    status = {"platform": "binary_sensor", "name": "Serveur", "device_class": "connectivity",
              "state_topic": f"{cfg.mqtt.base_topic}/status", "payload_on": "online", "payload_off": "offline",
              "unique_id": f"{SERVER_ID}_status", "default_entity_id": f"binary_sensor.{SERVER_ID}_status"}
    device = {"identifiers": [SERVER_ID], "name": "Serveur des distributeurs de gel", "manufacturer": "gel-dispenser",
              "model": "Serveur", "sw_version": version}
    return f"{cfg.mqtt.discovery_prefix}/device/{SERVER_ID}/config", {
        "device": device, "origin": origin(cfg, version), "components": {f"{SERVER_ID}_status": status}, "qos": 1}


def dispenser_state(entry: dict[str, Any]) -> dict[str, Any]:
    """The retained state of one dispenser, what its entities read."""
    keys = ("level_pct", "gel_used", "hands_detected", "entries", "online", "low", "no_use", "stuck", "empty_at",
            "missed", "last_seen", "last_event_at", "mode")
    return {k: entry.get(k) for k in keys}


def group_state(group: dict[str, Any]) -> dict[str, Any]:
    """The retained state of one group."""
    return {k: group[k] for k in ("gel_used", "hands_detected", "entries", "dispensers", "alerts")}

"""MQTT with Home Assistant discovery, against the real Mosquitto of the machine (127.0.0.1:1883)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
import requests

from devkit.servers import free_port, wait_for
from tests.helpers.auth import bearer
from tests.helpers.ci import skip_or_fail
from tests.helpers.config import TOKENS
from tests.helpers.wards import ward_config_text

BROKER = ("127.0.0.1", 1883)


class Listener:
    """A real MQTT client subscribed to a test's own topics, keeping every message (topic, payload, retained)."""

    def __init__(self, topics: list[str]):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.keep(m)
        try:
            self.client.connect(*BROKER)
        except OSError as exc:
            skip_or_fail(f"no MQTT broker on {BROKER}: {exc} (apt-get install mosquitto)")
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def keep(self, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def last(self, topic: str) -> dict | str | None:
        """The latest payload on `topic` (JSON decoded when it is), or None."""
        with self.lock:
            found = [p for t, p, _ in self.messages if t == topic]
        if not found:
            return None
        try:
            return json.loads(found[-1])
        except ValueError:
            return found[-1].decode()

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for t, _, _ in self.messages if t.startswith(prefix))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def topics() -> tuple[str, str]:
    """(discovery_prefix, base_topic) of this test alone: tests on other workers share the broker."""
    tag = uuid.uuid4().hex[:8]
    return f"ha-{tag}", f"gel-{tag}"


@pytest.fixture
def listener(topics) -> Iterator[Listener]:
    prefix, base = topics
    box = Listener([f"{prefix}/#", f"{base}/#"])
    yield box
    box.close()


def mqtt_config(tmp_path, topics, url: str = "mqtt://127.0.0.1:1883"):
    prefix, base = topics
    text = ward_config_text(database=f"sqlite:///{tmp_path / 'u.db'}", async_mode="eventlet", check_interval_s=3600)
    path = tmp_path / "config.toml"
    path.write_text(text + f'\n[server.mqtt]\nurl = "{url}"\ndiscovery_prefix = "{prefix}"\nbase_topic = "{base}"\n',
                    encoding="utf-8")
    return path


@pytest.mark.services
def test_home_assistant_sees_every_dispenser_as_a_device(server_factory, listener, topics, tmp_path) -> None:
    prefix, base = topics
    server = server_factory(config=mqtt_config(tmp_path, topics))
    topic = f"{prefix}/device/gel_entree/config"
    wait_for(lambda: listener.last(topic) and listener.last(f"{base}/status") == "online", 15,
             message="discovery and availability")
    config = listener.last(topic)
    device = config["device"]
    assert device["identifiers"] == ["gel_entree"] and device["name"] == "Entrée"
    assert device["suggested_area"] == "Ward A" and device["via_device"] == "gel_server"
    assert config["origin"]["name"] == "gel-dispenser" and config["origin"]["sw_version"]
    assert config["state_topic"] == f"{base}/entree/state" and config["availability_topic"] == f"{base}/status"
    parts = config["components"]
    assert set(parts) == {f"gel_entree_{k}" for k in ("level", "gel_used", "hands", "online", "low", "stuck",
                                                      "empty_at", "missed")}
    assert parts["gel_entree_gel_used"]["state_class"] == "total_increasing"
    assert parts["gel_entree_gel_used"]["unit_of_measurement"] == "mL"
    assert parts["gel_entree_online"]["device_class"] == "connectivity"
    assert parts["gel_entree_low"]["device_class"] == "problem"
    assert parts["gel_entree_empty_at"]["device_class"] == "timestamp"
    for key, part in parts.items():
        assert part["unique_id"] == key and part["default_entity_id"].endswith("." + key) and "object_id" not in part
    assert listener.last(f"{prefix}/device/gel_group_ward_a/config")["device"]["name"] == "Ward A"
    assert listener.last(f"{prefix}/device/gel_server/config")["device"]["identifiers"] == ["gel_server"]
    # Retained: a client that subscribes later gets them at once.
    late = Listener([f"{prefix}/device/gel_b12/config"])
    try:
        wait_for(lambda: late.messages, 10, message="the retained config")
        assert late.messages[0][2] is True
    finally:
        late.close()

    # A use: its dispenser's state and its two groups' (ward-a, site), nothing else.
    before = listener.count(f"{base}/")
    requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 2.5, "hands_detected": 1},
                  headers=bearer(TOKENS["entree"]), timeout=10)
    wait_for(lambda: (listener.last(f"{base}/entree/state") or {}).get("gel_used") == 2.5, 10, message="the state")
    wait_for(lambda: (listener.last(f"{base}/group/site/state") or {}).get("hands_detected") == 1, 10,
             message="the group's state")
    ward = listener.last(f"{base}/group/ward-a/state")
    assert ward["gel_used"] == 2.5 and ward["hands_today"] in (0, 1) and "compliance_today_pct" in ward
    group_parts = listener.last(f"{prefix}/device/gel_group_ward_a/config")["components"]
    assert {"gel_group_ward_a_hands_today", "gel_group_ward_a_compliance_today"} <= set(group_parts)
    assert listener.count(f"{base}/") - before == 3

    # Home Assistant restarts: it announces itself, and gets every config again.
    configs = listener.count(f"{prefix}/device/")
    listener.client.publish(f"{prefix}/status", "online")
    wait_for(lambda: listener.count(f"{prefix}/device/") >= configs + 6, 10, message="discovery again")

    # kill -9: the broker says offline for it (the last will).
    server.kill()
    wait_for(lambda: listener.last(f"{base}/status") == "offline", 60, message="the last will")


@pytest.mark.services
def test_no_broker_stops_nothing(server_factory, listener, topics, tmp_path) -> None:
    server = server_factory(config=mqtt_config(tmp_path, topics, url=f"mqtt://127.0.0.1:{free_port()}"))
    answer = requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 1.0},
                           headers=bearer(TOKENS["b12"]), timeout=10)
    assert answer.status_code == 200 and requests.get(server.url + "/healthz", timeout=10).status_code == 200
    assert listener.count("") == 0


@pytest.mark.parametrize(("table", "named"), [
    ('url = "http://127.0.0.1:1883"', "url must look like"),
    ('url = "mqtt://127.0.0.1"\nbase_topic = "gel/#"', "base_topic must be a topic without"),
    ('url = "mqtt://127.0.0.1"\nqos = 2', "unknown key(s) ['qos']"),
])
def test_bad_mqtt_settings_are_refused_at_start(tmp_path, table: str, named: str) -> None:
    from app.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text(ward_config_text() + "\n[server.mqtt]\n" + table + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert named in str(refused.value)


@pytest.mark.services
def test_a_reload_adds_and_removes_devices(server_factory, listener, topics, tmp_path) -> None:
    import signal

    prefix, _ = topics
    path = mqtt_config(tmp_path, topics)
    server = server_factory(config=path)
    wait_for(lambda: listener.last(f"{prefix}/device/gel_b12/config"), 15, message="b12's device")
    text = path.read_text(encoding="utf-8")
    start = text.index('[[server.dispensers]]\nid = "b12"')
    end = text.index("\n[[server.dispensers]]", start + 10) if "\n[[server.dispensers]]" in text[start + 10:] else \
        text.index("\n[server.mqtt]")
    text = text[:start] + text[end:].lstrip("\n")
    text = text.replace("\n[server.mqtt]", '\n[[server.dispensers]]\nid = "hall"\nname = "Hall"\ncapacity_ml = 400\n'
                        'token = "token-hall-000000000004"\n\n[server.mqtt]', 1)
    path.write_text(text, encoding="utf-8")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: listener.last(f"{prefix}/device/gel_b12/config") == "", 15, message="b12's config cleared")
    wait_for(lambda: listener.last(f"{prefix}/device/gel_hall/config"), 15, message="hall's device")
    assert listener.last(f"{prefix}/device/gel_hall/config")["device"]["name"] == "Hall"

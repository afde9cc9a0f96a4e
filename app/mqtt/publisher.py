"""Keeps an MQTT broker current: discovery and states (retained), availability with a last will, off the request path.

A use costs one message for its dispenser plus one per group above it: each second, only the dispensers written
since the last round are published (the change sequence says which), never the fleet. The broker being down
stops nothing: paho reconnects with backoff, and everything is published again (retained) when it is back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from typing import Any

from flask import Flask

from app.config import ServerConfig
from app.domain.compliance import daily
from app.live.figures import Figures
from app.mqtt.discovery import dispenser_config, dispenser_state, group_config, group_state, server_config

log = logging.getLogger(__name__)
ROUND_S = 1.0  # a dispenser's state goes out at most this often, however many uses it records meanwhile
TODAY_EVERY_S = 60.0  # a group's figures of the day (day rollups, census, outages) are read at most this often


class Publisher:
    """One paho client per app, and what was last published."""

    def __init__(self, app: Flask, version: str):
        import paho.mqtt.client as mqtt

        self.app, self.version = app, version
        cfg: ServerConfig = app.extensions["usage_config"]
        self.settings = cfg.mqtt
        self.status = f"{self.settings.base_topic}/status"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.settings.client_id or "",
                                  clean_session=True)
        self.client.will_set(self.status, "offline", qos=1, retain=True)
        if self.settings.username:
            self.client.username_pw_set(self.settings.username, self.settings.password)
        if self.settings.tls:
            self.client.tls_set(ca_certs=self.settings.ca_file)
        self.client.reconnect_delay_set(1, 60)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message
        self.lock = threading.Lock()
        self.seq = -1  # the change whose states went out last
        self.declared: set[str] = set()  # dispensers whose discovery config is out
        self.messages = 0  # published, for the bench's messages-per-use
        self.config = cfg  # the config the discovery configs were made from
        self.today: dict[str, tuple[float, dict[str, Any]]] = {}  # group -> (read at, its figures of the day)

    def start(self) -> None:
        """Connect in the background; a broker that does not answer yet is retried, the server serves meanwhile."""
        host, port = self.settings.address
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Say offline (a clean stop; a crash leaves it to the last will) and disconnect."""
        self.client.publish(self.status, "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: Any) -> None:
        """One retained message; an empty payload clears a retained discovery config."""
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        self.client.publish(topic, text, qos=1, retain=True)
        self.messages += 1

    def on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        """(Re)connected: online, every config and state again, and listen for Home Assistant's restarts."""
        if reason.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        log.info("MQTT connected to %s:%d", *self.settings.address)
        client.subscribe(f"{self.settings.discovery_prefix}/status", qos=1)
        self.publish(self.status, "online")
        self.publish_everything()

    def on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """Home Assistant came back (`<prefix>/status` = online): it needs the discovery configs again."""
        if message.topic.endswith("/status") and message.payload == b"online":
            self.publish_everything()

    def publish_everything(self) -> None:
        """Discovery of the server, every dispenser and group, then every state."""
        with self.lock:
            cfg: ServerConfig = self.app.extensions["usage_config"]
            figures: Figures = self.app.extensions["figures"]
            self.config = cfg
            payload = figures.payload()
            self.publish(*server_config(cfg, self.version))
            for entry in payload["dispensers"]:
                self.publish(*dispenser_config(cfg, entry, self.version))
                self.publish(f"{self.settings.base_topic}/{entry['id']}/state", dispenser_state(entry))
            for group in payload["groups"]:
                self.publish(*group_config(cfg, group["id"], self.version))
                self.publish(f"{self.settings.base_topic}/group/{group['id']}/state",
                             group_state(group) | self.of_today(group["id"]))
            self.forget_removed({e["id"] for e in payload["dispensers"]}, cfg)
            self.seq = payload["seq"]

    def forget_removed(self, ids: set[str], cfg: ServerConfig) -> None:
        """Dispensers gone from the config (a reload): their discovery config cleared, so Home Assistant drops them."""
        for ident in self.declared - ids:
            topic, _ = dispenser_config(cfg, {"id": ident, "name": ident}, self.version)
            self.publish(topic, "")
        self.declared = ids

    def of_today(self, group: str) -> dict[str, Any]:
        """The group's hands, gel and compliance rate today (local), read at most once a minute."""
        now = time.time()
        read_at, found = self.today.get(group, (-TODAY_EVERY_S, {}))
        if now - read_at < TODAY_EVERY_S:
            return found
        figures: Figures = self.app.extensions["figures"]
        store, cfg = figures.store, self.app.extensions["usage_config"]
        day = datetime.fromtimestamp(now, store.tz).date()
        row = daily(store, cfg, group, day, day, now)[0].row("day")
        found = {"hands_today": row["hands"], "gel_today_ml": row["gel_ml"],
                 "compliance_today_pct": row["compliance_pct"]}
        self.today[group] = (now, found)
        return found

    def round(self) -> int:
        """Publish the dispensers written since the last round and their groups; how many messages."""
        if not self.client.is_connected():
            return 0
        if self.app.extensions["usage_config"] is not self.config:  # a reload: names, groups, removals
            before = self.messages
            self.publish_everything()
            return self.messages - before
        with self.lock:
            figures: Figures = self.app.extensions["figures"]
            cfg: ServerConfig = self.app.extensions["usage_config"]
            view = figures.view
            seq = view.refresh(time.time())
            if seq == self.seq:
                return 0
            ids = view.changed_ids(self.seq)  # declared dispensers only, through the seq index
            before = self.messages
            with view.lock:
                view.resync(time.time(), ids)  # their entries as of now (flags move with time)
                entries = {i: view.entries[i] for i in ids if i in view.entries}
            new = [i for i in ids if i not in self.declared and i in entries]
            for ident in ids:
                if ident in entries:
                    if ident in new:
                        self.publish(*dispenser_config(cfg, entries[ident], self.version))
                    self.publish(f"{self.settings.base_topic}/{ident}/state", dispenser_state(entries[ident]))
            for group in view.groups_of([i for i in ids if i in entries]):
                self.publish(f"{self.settings.base_topic}/group/{group['id']}/state",
                             group_state(group) | self.of_today(group["id"]))
            self.declared |= set(new)
            self.seq = seq
            return self.messages - before


def run_publisher(app: Flask, sleep: Any, version: str) -> None:
    """Forever (a background task): connect, then publish what changed once a second."""
    publisher = app.extensions["mqtt_publisher"] = Publisher(app, version)
    publisher.start()
    while True:
        try:
            publisher.round()
        except Exception:  # a database hiccup must not end the publishing
            log.exception("MQTT round failed")
        sleep(ROUND_S)

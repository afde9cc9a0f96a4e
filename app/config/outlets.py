"""Where alerts go besides the screen: `[[server.notify]]` targets (signed webhooks, Apprise) and `[server.mqtt]`."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.config.errors import ConfigError, table_id

ALERT_KINDS = ("offline", "low", "no_use", "empty_soon", "stuck")
QUIET = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
NOTIFY_KEYS = {"id", "webhook", "secret", "apprise", "alerts", "groups", "quiet"}
REPORT_KEYS = {"group", "apprise", "day", "time"}
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MQTT_KEYS = {"url", "discovery_prefix", "base_topic", "username", "password", "ca_file", "client_id"}


@dataclass(frozen=True)
class NotifyTarget:
    """One `[[server.notify]]`: a signed webhook or an Apprise URL, the alert kinds and groups it is told of."""

    id: str
    webhook: str | None
    secret: str | None
    apprise: str | None
    alerts: tuple[str, ...]
    groups: tuple[str, ...]  # empty: the whole fleet
    quiet: tuple[int, int] | None  # minutes of the day: held from the first to the second

    def wants(self, kind: str, ancestors: tuple[str, ...]) -> bool:
        """True when this target is told of `kind` for a dispenser with these groups above it."""
        return kind in self.alerts and (not self.groups or any(g in ancestors for g in self.groups))


@dataclass(frozen=True)
class ReportSchedule:
    """One `[[server.reports]]`: the weekly report of a group, by email (or any Apprise target), on a day and time."""

    group: str | None
    target: NotifyTarget  # its Apprise URL; told of no alert
    weekday: int  # 0: Monday
    minute: int  # of the day, local time


@dataclass(frozen=True)
class MqttConfig:
    """`[server.mqtt]`: the broker, and the topics of Home Assistant's discovery and of the states."""

    url: str
    discovery_prefix: str = "homeassistant"
    base_topic: str = "gel"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    client_id: str | None = None

    @property
    def tls(self) -> bool:
        """mqtts:// (TLS, port 8883 by default)."""
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the broker."""
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or (8883 if self.tls else 1883)


def _strings(raw: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return tuple(raw)


def _secret(raw: Any, where: str) -> str:
    """A Standard Webhooks secret: whsec_ then base64 of at least 24 bytes."""
    if not isinstance(raw, str) or not raw.startswith("whsec_"):
        raise ConfigError(f"{where}: secret must be a Standard Webhooks secret, whsec_ followed by base64")
    try:
        key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: secret must be whsec_ followed by base64 (it is not valid base64)") from None
    if len(key) < 24:
        raise ConfigError(f"{where}: secret must hold at least 24 bytes (make one: python3 -c "
                          "'import base64,os; print(\"whsec_\" + base64.b64encode(os.urandom(32)).decode())')")
    return raw


def _apprise(raw: Any, where: str) -> str:
    """An Apprise URL of a scheme Apprise knows (ntfy://, mailto://, json://, matrix://...)."""
    import apprise

    if not isinstance(raw, str) or apprise.Apprise.instantiate(raw) is None:
        scheme = str(raw).split("://")[0] if isinstance(raw, str) else type(raw).__name__
        raise ConfigError(f"{where}: apprise URL of scheme {scheme!r} is not one Apprise supports "
                          "(e.g. ntfy://host/topic, mailto://user:pass@host, json://host/path)")
    return raw


def _webhook(raw: dict, where: str) -> str | None:
    """The webhook URL, which must come with its secret (and the secret with it)."""
    webhook = raw.get("webhook")
    if webhook is None:
        if "secret" in raw:
            raise ConfigError(f"{where}: secret goes with webhook only")
        return None
    if not isinstance(webhook, str) or urlsplit(webhook).scheme not in ("http", "https"):
        raise ConfigError(f"{where}: webhook must be an http:// or https:// URL")
    if "secret" not in raw:
        raise ConfigError(f"{where}: a webhook needs its secret (whsec_...), to sign what it is sent")
    return webhook


def _quiet(raw: Any, where: str) -> tuple[int, int] | None:
    if raw is None:
        return None
    found = QUIET.fullmatch(raw) if isinstance(raw, str) else None
    if found is None:
        raise ConfigError(f'{where}: quiet must look like "22:00-06:00"')
    h1, m1, h2, m2 = (int(v) for v in found.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def notify_target(raw: Any, index: int, groups: set[str]) -> NotifyTarget:
    """One `[[server.notify]]` table, checked: every error names the key."""
    ident = table_id(raw, "notify", index, NOTIFY_KEYS)
    where = f"[[server.notify]] {ident!r}"
    if ("webhook" in raw) == ("apprise" in raw):
        raise ConfigError(f"{where}: give either webhook (with secret) or apprise")
    webhook = _webhook(raw, where)
    alerts = _strings(raw.get("alerts", list(ALERT_KINDS)), where, "alerts")
    unknown = [k for k in alerts if k not in ALERT_KINDS]
    if unknown:
        raise ConfigError(f"{where}: alerts: unknown kind(s) {unknown}; known: {list(ALERT_KINDS)}")
    wanted = _strings(raw.get("groups", []), where, "groups")
    missing = [g for g in wanted if g not in groups]
    if missing:
        raise ConfigError(f"{where}: groups: unknown group(s) {missing}")
    return NotifyTarget(ident, webhook, _secret(raw["secret"], where) if webhook else None,
                        _apprise(raw["apprise"], where) if "apprise" in raw else None, alerts, wanted,
                        _quiet(raw.get("quiet"), where))


def notify_targets(raw: Any, groups: set[str]) -> tuple[NotifyTarget, ...]:
    """Every `[[server.notify]]`, with unique ids."""
    if not isinstance(raw, list):
        raise ConfigError("[[server.notify]] must be an array of tables")
    targets = tuple(notify_target(t, i, groups) for i, t in enumerate(raw))
    ids = [t.id for t in targets]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ConfigError(f"[[server.notify]]: ids must be unique, {twice} declared twice")
    return targets


def mqtt_config(raw: Any) -> MqttConfig | None:
    """`[server.mqtt]`, checked; None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("[server.mqtt] must be a table")
    if set(raw) - MQTT_KEYS:
        raise ConfigError(f"[server.mqtt]: unknown key(s) {sorted(set(raw) - MQTT_KEYS)}")
    for key in MQTT_KEYS:
        if key in raw and not isinstance(raw[key], str):
            raise ConfigError(f"[server.mqtt] {key} must be a string")
    parts = urlsplit(raw.get("url", ""))
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError('[server.mqtt] url must look like "mqtt://host:1883" or "mqtts://host:8883"')
    for key in ("discovery_prefix", "base_topic"):
        if key in raw and (not raw[key] or any(c in raw[key] for c in "#+ ")):
            raise ConfigError(f"[server.mqtt] {key} must be a topic without spaces, '#' or '+'")
    return MqttConfig(**raw)


def report_schedules(raw: Any, groups: set[str]) -> tuple[ReportSchedule, ...]:
    """Every `[[server.reports]]`, checked: group, apprise, day (default monday), time (default 07:00)."""
    if not isinstance(raw, list):
        raise ConfigError("[[server.reports]] must be an array of tables")
    found = []
    for index, table in enumerate(raw):
        where = f"[[server.reports]] #{index + 1}"
        if not isinstance(table, dict) or set(table) - REPORT_KEYS:
            raise ConfigError(f"{where}: a table of {sorted(REPORT_KEYS)}")
        group = table.get("group")
        if group is not None and group not in groups:
            raise ConfigError(f"{where}: group: unknown group {str(group)[:64]!r}")
        day = str(table.get("day", "monday")).lower()
        if day not in DAYS:
            raise ConfigError(f"{where}: day must be one of {list(DAYS)}")
        at = QUIET.fullmatch(f"{table.get('time', '07:00')}-00:00")
        if at is None:
            raise ConfigError(f'{where}: time must look like "07:00"')
        target = NotifyTarget(f"report-{group or 'all'}-{index + 1}", None, None, _apprise(table.get("apprise"), where),
                              (), (), None)
        found.append(ReportSchedule(group, target, DAYS.index(day), int(at[1]) * 60 + int(at[2])))
    return tuple(found)

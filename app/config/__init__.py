"""Typed server configuration read from the `[server]` tables of config.toml."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.config.errors import ConfigError
from app.config.fleet import Fleet, GroupDecl, parse_groups, read_dispensers_csv, safe_id
from app.config.outlets import MqttConfig, NotifyTarget, ReportSchedule, mqtt_config, notify_targets, report_schedules
from app.config.staff import StaffDecl, staff_members
from app.config.tokens import check_tokens, credential, token_digest
from gel_toolkit import ConfigFileError, load_toml

ASYNC_MODES = ("eventlet", "gevent", "threading")


@dataclass(frozen=True)
class DispenserDecl:
    """One `[[server.dispensers]]` table: a dispenser the server accepts events from."""

    id: str
    name: str
    capacity_ml: float
    token: str | None = None  # or only its digest, token_sha256 (hex), so the config holds no secret
    group: str | None = None
    token_sha256: str | None = None

    @property
    def digest(self) -> bytes:
        """The SHA-256 of the dispenser's token, what a request's token is compared with."""
        return bytes.fromhex(self.token_sha256) if self.token_sha256 else token_digest(self.token or "")


@dataclass(frozen=True)
class ServerConfig:
    """The `[server]` table, with every default a fresh install needs."""

    host: str = "127.0.0.1"
    port: int = 5000
    database: str = "sqlite:///instance/usage.db"
    async_mode: str = "eventlet"
    message_queue: str | None = None
    admin_token: str | None = None
    low_level_pct: float = 15.0
    offline_after_s: float = 180.0
    check_interval_s: float = 5.0
    timezone: str | None = None
    opening_hours: str | None = None
    no_use_alert_min: float | None = None
    log_level: str = "INFO"
    cors_origins: str | tuple[str, ...] = "*"
    maintenance_token: str | None = None  # staff: refills, census, modes; never a use
    dispensers_csv: str | None = None  # more dispensers, one per line (path relative to config.toml)
    groups: tuple[GroupDecl, ...] = field(default_factory=tuple)
    dispensers: tuple[DispenserDecl, ...] = field(default_factory=tuple)
    # Limits against slow or greedy clients (per server process).
    max_exports: int = 2  # CSV exports streaming at once; more get 503 with Retry-After
    keep_events_days: float | None = None  # raw events older than this are deleted (rollups kept); None: forever
    max_event_age_days: float = 31  # older dose times are refused (400): they would land in weeks long reported
    export_deadline_s: float = 600.0  # an export still streaming after this gives its slot up and is cut
    dispenser_events_per_min: int = 6000  # per dispenser token, events and heartbeats; 0: no limit
    max_dashboards: int = 2000  # Socket.IO connections in all
    max_dashboards_per_address: int = 64  # Socket.IO connections from one client address
    max_connections: int = 4000  # open HTTP connections (eventlet); more wait in the listen queue
    idle_timeout_s: float = 60.0  # a connection silent this long is closed (slowloris)
    # Alerts that leave the screen (docs/integrations.md).
    notify: tuple[NotifyTarget, ...] = field(default_factory=tuple)
    mqtt: MqttConfig | None = None
    reports: tuple[ReportSchedule, ...] = field(default_factory=tuple)
    staff: tuple[StaffDecl, ...] = field(default_factory=tuple)  # people with their own token and role
    language: str = "fr"  # of what the server writes to people: notifications, the weekly email
    public_url: str | None = None  # the dashboard's address as people open it: links in notifications
    settle_s: float = 60.0  # an alert is told once it held this long: a flapping one is not
    digest_after: int = 10  # more transitions than this for one person's target in a minute: one digest
    give_up_h: float = 48.0  # a notification not delivered after this long is dropped (and counted failed)
    empty_soon_h: float = 12.0  # `empty_soon`: the reservoir is predicted empty within this many hours

    @cached_property
    def token_digests(self) -> dict[bytes, str]:
        """Map the SHA-256 of every dispenser token to its dispenser id (computed once)."""
        return {d.digest: d.id for d in self.dispensers}

    @cached_property
    def staff_digests(self) -> dict[bytes, StaffDecl]:
        """Map the SHA-256 of every person's token to that person (computed once)."""
        return {p.digest: p for p in self.staff}

    @cached_property
    def fleet(self) -> Fleet:
        """The group tree and each dispenser's place in it (computed once)."""
        return Fleet(self.groups, ((d.id, d.group) for d in self.dispensers))

    def allowed_origin(self, origin: str | None) -> str | None:
        """What Access-Control-Allow-Origin answers a page from `origin`: `*`, that origin if listed, or None."""
        if isinstance(self.cors_origins, str):
            return self.cors_origins
        return origin if origin in self.cors_origins else None

    def targets(self) -> tuple[NotifyTarget, ...]:
        """Every target messages go to: the `[[server.notify]]` ones, then each weekly report's."""
        return self.notify + tuple(r.target for r in self.reports)

    def secrets(self) -> list[str]:
        """Every secret in the config, so that logs can redact them."""
        found = [d.token for d in self.dispensers if d.token]
        found += [t for t in (self.admin_token, self.maintenance_token) if t]
        # A notification URL may carry a token in its path or query (Slack, ntfy, mailto's password): logs name
        # the target by its id, never by its URL.
        found += [v for t in self.targets() for v in (t.secret, t.webhook, t.apprise) if v]
        if self.mqtt is not None and self.mqtt.password:
            found.append(self.mqtt.password)
        return found


def _resolve_database(url: str, base: Path) -> str:
    """Make a relative SQLite path relative to the config file and pick the PostgreSQL driver."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///"):]
        if rel and rel != ":memory:" and not Path(rel).is_absolute():
            return "sqlite:///" + str((base / rel).resolve())
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            # pg8000 is pure Python, so under eventlet its sockets are green and never block the hub.
            return "postgresql+pg8000://" + url[len(prefix):]
    return url


def _dispenser(raw: Any, where: str, groups: set[str]) -> DispenserDecl:
    """One dispenser table (from TOML or a CSV line), checked; `where` names it in errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - {"id", "name", "capacity_ml", "token", "token_sha256", "group"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    if "id" not in raw:
        raise ConfigError(f"{where}: missing key 'id'")
    ident = str(raw["id"])
    if not safe_id(ident):
        raise ConfigError(f"{where}: id {ident[:80]!r} must be 1 to 64 of A-Z a-z 0-9 - _ . (it travels in URLs)")
    token, digest = credential(raw, where)
    capacity = raw.get("capacity_ml", 300)
    if (not isinstance(capacity, int | float) or isinstance(capacity, bool) or not math.isfinite(capacity)
            or capacity <= 0):
        raise ConfigError(f"{where}: capacity_ml must be a positive number")
    group = raw.get("group")
    if group is not None and group not in groups:
        raise ConfigError(f"{where}: unknown group {str(group)[:64]!r}")
    name = str(raw.get("name", ident))
    if not name or len(name) > 200:
        raise ConfigError(f"{where}: name must be 1 to 200 characters")
    return DispenserDecl(ident, name, float(capacity), token, group, digest)


def _dispensers(values: dict[str, Any], base: Path, groups: set[str]) -> tuple[DispenserDecl, ...]:
    """The TOML's dispensers then the CSV file's, with unique ids and tokens."""
    raw = values.pop("dispensers", [])
    if not isinstance(raw, list):
        raise ConfigError("[[server.dispensers]] must be an array of tables")
    tables = [(f"[[server.dispensers]] #{i + 1}" + (f" ({t['id']})" if isinstance(t, dict) and "id" in t else ""), t)
              for i, t in enumerate(raw)]
    if values.get("dispensers_csv") is not None:
        try:
            tables += read_dispensers_csv(base / str(values["dispensers_csv"]))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    decls, seen, digests = [], set(), set()
    for where, table in tables:
        decl = _dispenser(table, where, groups)
        if decl.id in seen:
            raise ConfigError(f"{where}: dispenser ids must be unique, {decl.id!r} is declared twice")
        if decl.digest in digests:
            raise ConfigError(f"{where}: each dispenser needs its own token")
        seen.add(decl.id)
        digests.add(decl.digest)
        decls.append(decl)
    return tuple(decls)


def server_config(table: dict[str, Any], base: Path) -> ServerConfig:
    """Build a ServerConfig from a parsed `[server]` table; paths resolve against `base`."""
    known = {f.name for f in fields(ServerConfig)}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"[server]: unknown key(s) {sorted(unknown)}")
    values = dict(table)
    try:
        groups = parse_groups(values.pop("groups", []))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    decls = _dispensers(values, base, {g.id for g in groups})
    values["notify"] = notify_targets(values.pop("notify", []), {g.id for g in groups})
    values["mqtt"] = mqtt_config(values.pop("mqtt", None))
    values["reports"] = report_schedules(values.pop("reports", []), {g.id for g in groups})
    values["staff"] = staff_members(values.pop("staff", []), {g.id for g in groups}, {d.digest for d in decls})
    # GEL_ASYNC_MODE overrides the file (try a stack without editing it; the test suite runs in each mode so).
    values["async_mode"] = os.environ.get("GEL_ASYNC_MODE") or values.get("async_mode", ServerConfig.async_mode)
    if values["async_mode"] not in ASYNC_MODES:
        raise ConfigError(f"[server] async_mode (or GEL_ASYNC_MODE) must be one of {ASYNC_MODES}")
    if isinstance(values.get("cors_origins"), list):
        values["cors_origins"] = tuple(values["cors_origins"])
    values["database"] = _resolve_database(str(values.get("database", ServerConfig.database)), base)
    try:
        cfg = ServerConfig(dispensers=decls, groups=groups, **values)
    except TypeError as exc:
        raise ConfigError(f"[server]: {exc}") from None
    _check_values(cfg)
    _check_limits(cfg)
    check_tokens(cfg)
    _check_origins(cfg.cors_origins)
    return cfg


def _check_origins(origins: Any) -> None:
    """cors_origins is "*", one origin, or a list of origins (scheme://host[:port], as browsers send them)."""
    listed = (origins,) if isinstance(origins, str) else origins
    if not isinstance(listed, tuple) or not all(
            isinstance(o, str) and (o == "*" or re.fullmatch(r"https?://[^/\s]+", o)) for o in listed):
        raise ConfigError('[server] cors_origins must be "*", an origin such as "http://kiosk.lan:8080", '
                          "or a list of origins")


def _check_limits(cfg: ServerConfig) -> None:
    """The limits are whole numbers (positive; the event rate may be 0, no limit), the idle timeout seconds."""
    floors = {"digest_after": 1, "max_exports": 1, "max_dashboards": 1, "max_dashboards_per_address": 1,
              "max_connections": 1, "dispenser_events_per_min": 0}
    for key, floor in floors.items():
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < floor:
            raise ConfigError(f"[server] {key} must be an integer of at least {floor}")


def _check_outlets(cfg: ServerConfig) -> None:
    """What notifications are written in and link to."""
    if cfg.language not in ("fr", "en"):
        raise ConfigError('[server] language must be "fr" or "en"')
    if cfg.public_url is not None and not re.fullmatch(r"https?://[^\s]+", str(cfg.public_url)):
        raise ConfigError('[server] public_url must be the dashboard\'s address, e.g. "https://gel.hopital.lan/"')


def _check_values(cfg: ServerConfig) -> None:
    """Refuse values that would only fail later, at run time."""
    if not isinstance(cfg.port, int) or not 0 <= cfg.port <= 65535:
        raise ConfigError("[server] port must be an integer from 0 to 65535")
    optional = ("keep_events_days",) if cfg.keep_events_days is not None else ()  # left out: keep forever
    for key in ("low_level_pct", "offline_after_s", "check_interval_s", "idle_timeout_s", "export_deadline_s",
                "max_event_age_days", "settle_s", "give_up_h", "empty_soon_h", *optional):
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ConfigError(f"[server] {key} must be a positive number")
    keep = cfg.keep_events_days
    if keep is not None and keep <= cfg.max_event_age_days:
        raise ConfigError(f"[server] keep_events_days ({keep:g}) must be more than max_event_age_days "
                          f"({cfg.max_event_age_days:g}): a dose resent after its event was deleted would count twice")
    if cfg.timezone is not None:
        try:
            ZoneInfo(cfg.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"[server] timezone {cfg.timezone!r} is not an IANA zone such as Europe/Paris") from None
    if cfg.opening_hours is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d",
                                                          str(cfg.opening_hours)):
        raise ConfigError('[server] opening_hours must look like "08:00-18:00"')
    if cfg.opening_hours is not None and cfg.opening_hours[:5] == cfg.opening_hours[6:]:
        raise ConfigError('[server] opening_hours must not start and end at the same minute ("00:00-23:59": all day)')
    _check_outlets(cfg)
    if str(cfg.log_level).upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError("[server] log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")


def load_config(path: str | Path) -> ServerConfig:
    """Read the `[server]` part of a config.toml file."""
    path = Path(path)
    try:
        data = load_toml(path)
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None
    return server_config(data.get("server", {}), path.resolve().parent)

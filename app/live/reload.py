"""Reload without restart: SIGHUP re-reads config.toml and the dispensers CSV, and applies what can change live.

Added, renamed, moved and removed dispensers and groups, rotated tokens and the alert thresholds take effect at
once; dashboards stay connected and fetch the new figures. A config that fails its checks changes nothing.
Settings the running server was built around (where it listens, its database, its queue...) keep their running
value until a restart, and a warning names them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from flask import Flask

from app.config import ConfigError, ServerConfig, load_config
from app.config.tokens import insecure_reason
from app.limits import RateLimiter, Slots
from app.live import DELTA, EVENT, FULL_ROOM, group_room, socketio
from app.live.figures import Figures, Payload, iso
from app.live.pushes import PushState
from app.live.rooms import reaches
from app.logs import redact_more
from app.store.auditlog import append_audit, audit_entry

log = logging.getLogger(__name__)
# What the process was built around: a listening socket, a database and its day boundaries, the queue, the
# connection caps of the server loop and of Socket.IO, the retention task.
RESTART_ONLY = ("host", "port", "database", "async_mode", "message_queue", "timezone", "cors_origins",
                "max_connections", "idle_timeout_s", "max_dashboards", "max_dashboards_per_address",
                "keep_events_days", "check_interval_s")


@dataclasses.dataclass
class Reloaded:
    """What a reload changed, for its log line and its tests."""

    added: list[str]
    removed: list[str]
    changed: list[str]
    groups_added: list[str]
    groups_removed: list[str]
    tokens_rotated: list[str]
    staff_added: list[str]
    staff_removed: list[str]
    staff_changed: list[str]  # role, name or groups
    staff_tokens_rotated: list[str]
    restart_needed: list[str]

    def summary(self) -> str:
        """One log line's worth: counts and the first few ids."""
        parts = [f"{name}={len(ids)}" + (f" ({', '.join(ids[:5])}{'…' if len(ids) > 5 else ''})" if ids else "")
                 for name, ids in dataclasses.asdict(self).items() if name != "restart_needed"]
        return " ".join(parts)


def differences(old: ServerConfig, new: ServerConfig) -> Reloaded:
    """What differs between the running config and the one read."""
    before, after = {d.id: d for d in old.dispensers}, {d.id: d for d in new.dispensers}
    both = before.keys() & after.keys()
    return Reloaded(
        added=sorted(after.keys() - before.keys()),
        removed=sorted(before.keys() - after.keys()),
        changed=sorted(i for i in both if (before[i].name, before[i].capacity_ml, before[i].group)
                       != (after[i].name, after[i].capacity_ml, after[i].group)),
        groups_added=sorted({g.id for g in new.groups} - {g.id for g in old.groups}),
        groups_removed=sorted({g.id for g in old.groups} - {g.id for g in new.groups}),
        tokens_rotated=sorted(i for i in both if before[i].digest != after[i].digest)
        + [k for k in ("admin_token", "maintenance_token") if getattr(old, k) != getattr(new, k)],
        **staff_differences(old, new),
        restart_needed=[k for k in RESTART_ONLY if getattr(old, k) != getattr(new, k)],
    )


def staff_differences(old: ServerConfig, new: ServerConfig) -> dict[str, list[str]]:
    """People added, removed, changed (role, name, groups) and whose token was rotated."""
    before, after = {p.id: p for p in old.staff}, {p.id: p for p in new.staff}
    both = before.keys() & after.keys()
    return {"staff_added": sorted(after.keys() - before.keys()), "staff_removed": sorted(before.keys() - after.keys()),
            "staff_changed": sorted(i for i in both if (before[i].role, before[i].name, before[i].groups)
                                    != (after[i].role, after[i].name, after[i].groups)),
            "staff_tokens_rotated": sorted(i for i in both if before[i].digest != after[i].digest)}


def read_new_config(path: str | Path, running: ServerConfig, demo: bool) -> tuple[ServerConfig, Reloaded]:
    """The config at `path`, checked as at start, with the restart-only settings kept at their running value."""
    new = load_config(path)
    reason = insecure_reason(new, demo=demo)
    if reason:
        raise ConfigError(reason)
    found = differences(running, new)
    kept = {k: getattr(running, k) for k in found.restart_needed}
    return (dataclasses.replace(new, **kept) if kept else new), found


def reload_config(app: Flask, path: str | Path, demo: bool = False) -> Reloaded | None:
    """Re-read the config and apply it; None (one log line, nothing changed) when it fails its checks."""
    running: ServerConfig = app.extensions["usage_config"]
    try:
        new, found = read_new_config(path, running, demo)
    except ConfigError as exc:
        log.error("config reload refused, the running config stays in force: %s", exc)
        return None
    if found.restart_needed:
        log.warning("config reload: %s changed but take effect only after a restart; the rest is applied",
                    ", ".join(found.restart_needed))
    with app.app_context():
        apply(app, running, new)
        audit_reload(app, found)
    log.info("config reloaded: %s", found.summary())
    return found


def audit_reload(app: Flask, found: Reloaded) -> None:
    """The reload in the audit: what it added, removed and changed; one entry more per rotated person's token."""
    entries = [audit_entry("config reload", "system", "config.reload", detail=dataclasses.asdict(found))]
    entries += [audit_entry("config reload", "system", "token.rotated", person)
                for person in found.staff_tokens_rotated]
    append_audit(app.extensions["usage_store"], entries)


def apply(app: Flask, running: ServerConfig, new: ServerConfig) -> None:
    """Swap the config and everything built from it; tell every dashboard to fetch the new figures."""
    redact_more(new.secrets())  # before anything could log a new token
    store = app.extensions["usage_store"]
    store.offline_after_s = new.offline_after_s
    store.decls = tuple(new.dispensers)
    store.sync_dispensers(new.dispensers)  # new rows, names and capacities; takes a change number either way
    figures = Figures(store, new)
    seq = figures.view.refresh(time.time())
    extensions = app.extensions
    extensions["usage_config"], extensions["figures"] = new, figures
    extensions["push_state"] = PushState(seq)
    if new.dispenser_events_per_min != running.dispenser_events_per_min:
        extensions["dispenser_rate"] = RateLimiter(new.dispenser_events_per_min)
    if (new.max_exports, new.export_deadline_s) != (running.max_exports, running.export_deadline_s):
        extensions["export_slots"] = Slots(new.max_exports, new.export_deadline_s)
    logging.getLogger().setLevel(new.log_level.upper())
    tell_dashboards(figures, seq, running.fleet.groups.keys() | new.fleet.groups.keys())


def tell_dashboards(figures: Figures, seq: int, groups: set[str]) -> None:
    """Joined clients get a delta whose `base` is past anything they hold: a gap, so they fetch the GET again
    (new dispensers, names, groups); the others get the new full figures."""
    view = figures.view
    for group in [None, *sorted(groups)]:
        room = group_room(group)
        if not reaches(room):
            continue
        gel_ul, hands, passages, updated = view.totals_of(group) if group is None or group in view.fleet.groups \
            else (0, 0, 0, time.time())
        gap = Payload(base=seq, seq=seq, gel_used=gel_ul / 1000, hands_detected=int(hands), entries=int(passages),
                      updated_at=iso(updated or time.time()), dispensers=[], removed=[], groups=[])
        socketio.emit(DELTA, gap, to=room)
    if reaches(FULL_ROOM):
        socketio.emit(EVENT, figures.payload(), to=FULL_ROOM)

"""Alert transitions: the live figures' alerts against those already told, recorded once with their messages."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.config import ServerConfig
from app.config.outlets import NotifyTarget
from app.live.figures import Figures
from app.live.grouptotals import alert_kinds
from app.store.outbox import record_alerts, told_alerts


def parse_iso(text: str | None) -> float | None:
    """An ISO time of the payload as a timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def kinds_of(entry: dict[str, Any], cfg: ServerConfig, now: float) -> tuple[str, ...]:
    """The alerts of a dispenser entry as notifications know them: the screen's, and `empty_soon`."""
    kinds = alert_kinds(entry)
    empty = parse_iso(entry.get("empty_at"))
    if empty is not None and now <= empty <= now + cfg.empty_soon_h * 3600 and "low" not in kinds:
        kinds += ("empty_soon",)
    if entry.get("stuck"):
        kinds += ("stuck",)
    return kinds


def since_of(kind: str, entry: dict[str, Any], cfg: ServerConfig, now: float) -> float:
    """When the alert began, as far as the figures tell: the silence's start for offline and no use."""
    if kind == "offline":
        seen = parse_iso(entry.get("last_seen"))
        return seen + cfg.offline_after_s if seen is not None else now
    if kind == "no_use":
        return parse_iso(entry.get("last_event_at")) or now
    return now


def message_id(*parts: object) -> str:
    """A stable id for one transition to one target: the same on every try, after a restart too."""
    return "msg_" + hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:32]


def quiet_until(target: NotifyTarget, ts: float, timezone: str | None) -> float:
    """`ts`, or the end of the target's quiet period when `ts` falls in it."""
    if target.quiet is None:
        return ts
    start, end = target.quiet
    local = datetime.fromtimestamp(ts, ZoneInfo(timezone) if timezone else None)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return ts
    wake = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if wake <= local:
        wake += timedelta(days=1)
    return wake.timestamp()


def alert_data(dispenser: str, kind: str, since: float, entry: dict[str, Any] | None, cfg: ServerConfig,
               ) -> dict[str, Any]:
    """The `data` of an alert's webhook (and what its text is written from)."""
    entry = entry or {"id": dispenser, "name": dispenser}
    fleet = cfg.fleet
    group = fleet.group_of.get(dispenser)
    link = f"{cfg.public_url.rstrip('/')}/?group={group}" if cfg.public_url and group else cfg.public_url
    return {"dispenser": dispenser, "name": entry.get("name", dispenser), "group": group,
            "path": fleet.path(dispenser) if dispenser in fleet.group_of else [], "kind": kind,
            "since": datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z"), "since_ts": since,
            "level_pct": entry.get("level_pct"), "empty_at": entry.get("empty_at"),
            "empty_at_ts": parse_iso(entry.get("empty_at")), "link": link}


def messages_for(cfg: ServerConfig, kind_of: str, data: dict[str, Any], since: float, now: float,
                 ) -> list[dict[str, Any]]:
    """One outbox row per target told of this transition, due once it held for `settle_s` (and quiet is over)."""
    ancestors = tuple(cfg.fleet.ancestors(data["dispenser"])) if data["dispenser"] in cfg.fleet.group_of else ()
    rows = []
    for target in cfg.notify:
        if not target.wants(data["kind"], ancestors):
            continue
        due = quiet_until(target, now + cfg.settle_s, cfg.timezone)
        rows.append({"target": target.id, "type": f"alert.{kind_of}", "dispenser_id": data["dispenser"],
                     "kind": data["kind"], "body": json.dumps(data, ensure_ascii=False), "created_at": now,
                     "due_at": due,
                     "msg_id": message_id(target.id, kind_of, data["dispenser"], data["kind"], round(since, 3))})
    return rows


def track(figures: Figures, cfg: ServerConfig, now: float | None = None, offline_from: float = 0.0,
          ids: list[str] | None = None) -> tuple[int, int]:
    """Record the alerts raised and resolved since the last look, with their messages; (raised, resolved).

    `ids`: look at these dispensers only (those written since the last look: a use costs its own dispenser, not
    the fleet); None: at every one (the periodic look, which sees what moves with time alone).
    No dispenser is told offline before `offline_from`: after the server itself was down, the dispensers need
    `offline_after_s` to reach it again before their silence says anything about them.
    """
    now = time.time() if now is None else now
    store = figures.store
    if ids is None:
        entries = {e["id"]: e for e in figures.payload(now=now)["dispensers"]}
    else:
        view = figures.view
        with view.lock:
            view.refresh(now)
            view.resync(now, ids)
            entries = {i: dict(view.entries[i]) for i in ids if i in view.entries}
    told = told_alerts(store, None if ids is None else list(entries))
    current = {(i, k): e for i, e in entries.items() for k in kinds_of(e, cfg, now)
               if k != "offline" or now >= offline_from or (i, k) in told}
    raised = [(i, k, since_of(k, e, cfg, now)) for (i, k), e in current.items() if (i, k) not in told]
    resolved = [key for key in told if key not in current]
    if not raised and not resolved:
        return 0, 0
    messages = []
    for dispenser, kind, since in raised:
        messages += messages_for(cfg, "raised", alert_data(dispenser, kind, since, entries[dispenser], cfg), since,
                                 now)
    for dispenser, kind in resolved:
        since = told[(dispenser, kind)]
        messages += messages_for(cfg, "resolved", alert_data(dispenser, kind, since, entries.get(dispenser), cfg),
                                 since, now)
    record_alerts(store, raised, resolved, messages, now)
    return len(raised), len(resolved)

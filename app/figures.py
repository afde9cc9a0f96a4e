"""The usage payload: what GET /obtenir_donnees_utilisation returns and `donnees_utilisation` pushes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from app.config import ServerConfig
from app.store import Store

RATE_WINDOW_S = 24 * 3600


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _in_opening_hours(spec: str | None, now: float, store: Store) -> bool:
    if not spec:
        return False
    start_s, end_s = spec.split("-")
    local = datetime.fromtimestamp(now, store.tz).strftime("%H:%M")
    return start_s.strip() <= local < end_s.strip()


def _dispenser(row: Any, cfg: ServerConfig, store: Store, used_recently: int, now: float) -> dict[str, Any]:
    capacity_ul = row.capacity_ml * 1000
    left_ul = max(0.0, capacity_ul - (row.gel_ul - row.refill_gel_ul))
    level = round(100.0 * left_ul / capacity_ul, 1)
    empty_at = None
    if used_recently > 0 and row.last_event_at is not None:
        # Anchored on the last dose, not on now, so the payload (and its ETag) only moves with the data.
        seconds_left = left_ul / (used_recently / RATE_WINDOW_S)
        empty_at = iso(round((row.last_event_at + seconds_left) / 60) * 60)
    online = row.last_seen is not None and now - row.last_seen <= cfg.offline_after_s
    idle = (
        cfg.no_use_alert_min is not None
        and _in_opening_hours(cfg.opening_hours, now, store)
        and now - (row.last_event_at or 0) > cfg.no_use_alert_min * 60
    )
    return {
        "id": row.id,
        "name": row.name,
        "gel_used": row.gel_ul / 1000,
        "hands_detected": row.hands,
        "events": row.events,
        "capacity_ml": row.capacity_ml,
        "level_pct": level,
        "low": level < cfg.low_level_pct,
        "empty_at": empty_at,
        "refilled_at": iso(row.refilled_at),
        "last_seen": iso(row.last_seen),
        "last_event_at": iso(row.last_event_at),
        "online": online,
        "no_use": bool(idle),
        "missed": row.missed,
        "backlog": row.backlog,
        "version": row.version,
    }


def alerts_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alert list: one item per problem, worst first (offline, low, no use)."""
    found = []
    for kind, test in (("offline", lambda d: not d["online"]), ("low", lambda d: d["low"]),
                       ("no_use", lambda d: d["no_use"])):
        found += [{"dispenser": d["id"], "name": d["name"], "kind": kind} for d in entries if test(d)]
    return found


def usage_payload(store: Store, cfg: ServerConfig, dispenser_id: str | None = None,
                  now: float | None = None) -> dict[str, Any]:
    """Totals, one entry per declared dispenser, and alerts; narrowed to one dispenser if asked."""
    now = time.time() if now is None else now
    rows = {r.id: r for r in store.dispenser_rows()}
    recent = store.recent_use(now - RATE_WINDOW_S)
    declared = [d.id for d in cfg.dispensers if d.id in rows]
    if dispenser_id is not None:
        declared = [dispenser_id]
    entries = [_dispenser(rows[i], cfg, store, recent.get(i, 0), now) for i in declared]
    # Totals cover every row, so use recorded by a dispenser since removed from config still counts.
    counted = [rows[dispenser_id]] if dispenser_id is not None else list(rows.values())
    return {
        "gel_used": sum(r.gel_ul for r in counted) / 1000,
        "hands_detected": sum(r.hands for r in counted),
        "updated_at": iso(max((r.updated_at for r in counted), default=now)),
        "dispensers": entries,
        "alerts": alerts_of(entries),
    }

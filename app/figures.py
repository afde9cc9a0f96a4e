"""The usage payload: what GET /obtenir_donnees_utilisation returns and `donnees_utilisation` pushes."""

from __future__ import annotations

import hashlib
import json
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


# Profiled (py-spy, 100 dispensers): rebuilding every entry (4 datetime formats each) was ~40% of a POST and of
# a GET. An entry only depends on its row, the recent use, the two time-dependent flags and low_level_pct, so
# entries are memoised on exactly those; a POST then rebuilds one entry, not all of them.
_ENTRY_MEMO: dict[tuple, dict[str, Any]] = {}
_MEMO_MAX = 4096


def _dispenser(row: Any, cfg: ServerConfig, store: Store, used_recently: int, now: float) -> dict[str, Any]:
    online = row.last_seen is not None and now - row.last_seen <= cfg.offline_after_s
    idle = bool(
        cfg.no_use_alert_min is not None
        and _in_opening_hours(cfg.opening_hours, now, store)
        and now - (row.last_event_at or 0) > cfg.no_use_alert_min * 60
    )
    key = (tuple(row), used_recently, online, idle, cfg.low_level_pct)
    entry = _ENTRY_MEMO.get(key)
    if entry is None:
        if len(_ENTRY_MEMO) >= _MEMO_MAX:
            _ENTRY_MEMO.clear()
        entry = _ENTRY_MEMO[key] = _build_dispenser(row, cfg, store, used_recently, now)
    return dict(entry)


def _build_dispenser(row: Any, cfg: ServerConfig, store: Store, used_recently: int, now: float) -> dict[str, Any]:
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


# Whole payloads, reused while the database has not changed (Store.data_version) and no time-dependent flag
# (online, no use) or the 24 h rate window can have moved: an unchanged poll then costs one PRAGMA (SQLite) or one
# single-row aggregate (PostgreSQL), nothing more.
_PAYLOADS: dict[tuple, tuple] = {}


def _valid_until(rows: list[Any], cfg: ServerConfig, now: float) -> float:
    """The time at which a payload computed at `now` from `rows` may change without any write."""
    if not rows:
        return now  # "updated_at" falls back to now: never reuse
    until = min((r.last_seen + cfg.offline_after_s for r in rows
                 if r.last_seen is not None and now - r.last_seen <= cfg.offline_after_s), default=float("inf"))
    if cfg.no_use_alert_min is not None:
        # Opening hours are minute-granular; an idle flag flips at last_event_at + the alert delay.
        until = min(until, (now // 60 + 1) * 60, *(
            (r.last_event_at or 0) + cfg.no_use_alert_min * 60 for r in rows
            if now - (r.last_event_at or 0) <= cfg.no_use_alert_min * 60))
    return until


def usage_payload(store: Store, cfg: ServerConfig, dispenser_id: str | None = None,
                  now: float | None = None) -> dict[str, Any]:
    """Totals, one entry per declared dispenser, and alerts; narrowed to one dispenser if asked."""
    now = time.time() if now is None else now
    version = store.data_version()  # read before the data, so a concurrent write only makes the cache miss
    window = store.bucket_start("hour", now - RATE_WINDOW_S)
    key = (id(store), id(cfg), dispenser_id)
    hit = _PAYLOADS.get(key)
    if (hit is not None and hit[0] is store and hit[1] is cfg and hit[2] == version
            and hit[3] == window and hit[4] <= now < hit[5]):
        return hit[6]
    payload = _compute_payload(store, cfg, dispenser_id, now)
    if len(_PAYLOADS) >= 64:
        _PAYLOADS.clear()
    _PAYLOADS[key] = (store, cfg, version, window, now, payload.pop("_valid_until"), payload)
    return payload


def _compute_payload(store: Store, cfg: ServerConfig, dispenser_id: str | None, now: float) -> dict[str, Any]:
    rows = {r.id: r for r in store.dispenser_rows()}
    recent = store.recent_use_for(now - RATE_WINDOW_S, {i: r.events for i, r in rows.items()})
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
        "_valid_until": _valid_until([rows[i] for i in declared], cfg, now),
    }


# The last payload with its JSON text and ETag: the GET route and every push of the same (cached) payload object
# reuse them instead of encoding ~35 KB again (profiled: encoding was ~8% of a POST with a dashboard connected).
_ENCODED: tuple[dict | None, str, str] = (None, "", "")


def encoded(payload: dict[str, Any]) -> tuple[str, str]:
    """The payload's compact JSON text and a strong ETag for it, computed once per payload object."""
    global _ENCODED
    last, text, etag = _ENCODED
    if payload is not last:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        etag = hashlib.sha1(text.encode()).hexdigest()[:24]
        _ENCODED = (payload, text, etag)
    return text, etag

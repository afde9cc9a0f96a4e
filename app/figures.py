"""The usage payload: what GET /obtenir_donnees_utilisation returns and `donnees_utilisation` pushes."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.config import ServerConfig
from app.store import Store

RATE_WINDOW_S = 24 * 3600
ENTRIES_MAX = 4096  # memoised dispenser entries kept before starting afresh
PAYLOADS_MAX = 64


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Payload(dict):
    """The figures as a JSON object, carrying their compact JSON text and strong ETag once computed.

    The GET route and every push of the same payload object reuse the text instead of encoding it again.
    """

    __slots__ = ("_encoded",)

    def encoded(self) -> tuple[str, str]:
        """The compact JSON text and a strong ETag for it, computed once per payload object."""
        try:
            return self._encoded
        except AttributeError:
            text = json.dumps(self, ensure_ascii=False, separators=(",", ":"))
            self._encoded = (text, hashlib.sha1(text.encode()).hexdigest()[:24])
            return self._encoded


@dataclass(frozen=True)
class Flags:
    """A dispenser's two time-dependent flags, computed once per payload."""

    online: bool
    idle: bool  # no use for no_use_alert_min during opening hours


@dataclass(frozen=True)
class CachedPayload:
    """A payload and the conditions under which it is still the right answer."""

    version: Hashable  # Store.data_version() read before the data
    window: int  # start of the 24 h rate window
    computed_at: float
    valid_until: float  # when a flag may flip without any write
    payload: Payload

    def fits(self, version: Hashable, window: int, now: float) -> bool:
        """True when nothing this payload shows can have changed."""
        return self.version == version and self.window == window and self.computed_at <= now < self.valid_until


class Figures:
    """The figures of one app (its store and config), with the caches that make them cheap to serve.

    Dispenser entries are memoised on what they depend on (the row, the recent use, the two flags), so a use
    rebuilds one entry, not all of them. Whole payloads are reused while the database has not changed and no
    flag or the rate window can have moved: an unchanged poll costs one data-version read.
    """

    def __init__(self, store: Store, cfg: ServerConfig):
        self.store, self.cfg = store, cfg
        self.entries: dict[tuple, dict[str, Any]] = {}
        self.payloads: dict[str | None, CachedPayload] = {}  # per `dispenser_id` asked for

    def payload(self, dispenser_id: str | None = None, now: float | None = None) -> Payload:
        """Totals, one entry per declared dispenser, and alerts; narrowed to one dispenser if asked."""
        now = time.time() if now is None else now
        version = self.store.data_version()  # read before the data, so a concurrent write only makes the cache miss
        window = self.store.bucket_start("hour", now - RATE_WINDOW_S)
        hit = self.payloads.get(dispenser_id)
        if hit is not None and hit.fits(version, window, now):
            return hit.payload
        payload, valid_until = self._compute(dispenser_id, now)
        if len(self.payloads) >= PAYLOADS_MAX:
            self.payloads.clear()
        self.payloads[dispenser_id] = CachedPayload(version, window, now, valid_until, payload)
        return payload

    def _compute(self, dispenser_id: str | None, now: float) -> tuple[Payload, float]:
        """A fresh payload and the time until which it holds without any write."""
        rows = {r.id: r for r in self.store.dispenser_rows()}
        recent = self.store.recent_use_for(now - RATE_WINDOW_S, {i: r.events for i, r in rows.items()})
        declared = [dispenser_id] if dispenser_id is not None else [d.id for d in self.cfg.dispensers if d.id in rows]
        entries = [self._entry(rows[i], recent.get(i, 0), now) for i in declared]
        # Totals cover every row, so use recorded by a dispenser since removed from config still counts.
        counted = [rows[dispenser_id]] if dispenser_id is not None else list(rows.values())
        payload = Payload(
            gel_used=sum(r.gel_ul for r in counted) / 1000,
            hands_detected=sum(r.hands for r in counted),
            updated_at=iso(max((r.updated_at for r in counted), default=now)),
            dispensers=entries,
            alerts=alerts_of(entries),
        )
        return payload, self._valid_until([rows[i] for i in declared], now)

    def _flags(self, row: Any, now: float) -> Flags:
        cfg = self.cfg
        online = row.last_seen is not None and now - row.last_seen <= cfg.offline_after_s
        idle = bool(
            cfg.no_use_alert_min is not None
            and self._in_opening_hours(now)
            and now - (row.last_event_at or 0) > cfg.no_use_alert_min * 60
        )
        return Flags(online, idle)

    def _in_opening_hours(self, now: float) -> bool:
        if not self.cfg.opening_hours:
            return False
        start_s, end_s = self.cfg.opening_hours.split("-")
        local = datetime.fromtimestamp(now, self.store.tz).strftime("%H:%M")
        return start_s.strip() <= local < end_s.strip()

    def _entry(self, row: Any, used_recently: int, now: float) -> dict[str, Any]:
        flags = self._flags(row, now)
        key = (tuple(row), used_recently, flags)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= ENTRIES_MAX:
                self.entries.clear()
            entry = self.entries[key] = dispenser_entry(row, self.cfg, used_recently, flags)
        return dict(entry)

    def _valid_until(self, rows: list[Any], now: float) -> float:
        """The time at which a payload computed at `now` from `rows` may change without any write."""
        cfg = self.cfg
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


def dispenser_entry(row: Any, cfg: ServerConfig, used_recently: int, flags: Flags) -> dict[str, Any]:
    """One dispenser's figures: totals, reservoir level, predicted empty time, flags."""
    capacity_ul = row.capacity_ml * 1000
    left_ul = max(0.0, capacity_ul - (row.gel_ul - row.refill_gel_ul))
    level = round(100.0 * left_ul / capacity_ul, 1)
    empty_at = None
    if used_recently > 0 and row.last_event_at is not None:
        # Anchored on the last dose, not on now, so the payload (and its ETag) only moves with the data.
        seconds_left = left_ul / (used_recently / RATE_WINDOW_S)
        empty_at = iso(round((row.last_event_at + seconds_left) / 60) * 60)
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
        "online": flags.online,
        "no_use": flags.idle,
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

"""The usage payload (GET /obtenir_donnees_utilisation, `donnees_utilisation`) and the delta of what changed."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.config import ServerConfig
from app.live.fleetview import FleetView
from app.live.grouptotals import ALERT_KINDS, alert_kinds
from app.store import Store

RATE_WINDOW_S = 24 * 3600
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

    __slots__ = ("_encoded", "_gzipped")

    def encoded(self) -> tuple[str, str]:
        """The compact JSON text and a strong ETag for it, computed once per payload object."""
        try:
            return self._encoded
        except AttributeError:
            text = json.dumps(self, ensure_ascii=False, separators=(",", ":"))
            self._encoded = (text, hashlib.sha1(text.encode()).hexdigest()[:24])
            return self._encoded

    def gzipped(self) -> bytes:
        """The JSON text gzip-compressed, computed once per payload object (polls share it)."""
        try:
            return self._gzipped
        except AttributeError:
            self._gzipped = gzip.compress(self.encoded()[0].encode(), compresslevel=6, mtime=0)
            return self._gzipped


@dataclass(frozen=True)
class Flags:
    """A dispenser's two time-dependent flags, computed once per payload."""

    online: bool
    idle: bool  # no use for no_use_alert_min during opening hours


@dataclass(frozen=True)
class CachedPayload:
    """A payload and the conditions under which it is still the right answer."""

    seq: int  # the change sequence number the payload reflects
    window: int  # start of the 24 h rate window
    computed_at: float
    valid_until: float  # when a flag may flip without any write
    payload: Payload

    def fits(self, seq: int, window: int, now: float) -> bool:
        """True when nothing this payload shows can have changed."""
        return self.seq == seq and self.window == window and self.computed_at <= now < self.valid_until


class Figures:
    """The figures of one app (its store and config), with the caches that make them cheap to serve.

    Dispenser entries are memoised on what they depend on (the row, the recent use, the two flags), and the
    fleet view re-reads only the rows written since it last looked, so a use rebuilds one entry, not all of them.
    Whole payloads are reused while no change was written and no flag or the rate window can have moved: an
    unchanged poll costs one read of the change counter.
    """

    def __init__(self, store: Store, cfg: ServerConfig):
        self.store, self.cfg = store, cfg
        # One memoised entry per dispenser, keyed on what it depends on: a write replaces its dispenser's, so the
        # memo holds the whole fleet (a full payload at 10,000 rebuilds nothing) and never more.
        self.entries: dict[tuple, dict[str, Any]] = {}
        self.entry_keys: dict[str, tuple] = {}  # dispenser -> its entry's key in `entries`
        self.payloads: dict[tuple, CachedPayload] = {}  # per (dispenser, group) asked for
        self.open_at: tuple[float, bool] = (math.nan, False)  # (now, in opening hours): one answer per build
        self.view = FleetView(store, cfg, self._entry, RATE_WINDOW_S)

    def payload(self, dispenser_id: str | None = None, now: float | None = None, group: str | None = None) -> Payload:
        """Totals, one entry per declared dispenser, alerts and groups; narrowed to a dispenser or a group if asked."""
        now = time.time() if now is None else now
        seq = self.view.refresh(now)  # before the cache check: the counter moves with every write
        window = self.store.bucket_start("hour", now - RATE_WINDOW_S)
        key = (dispenser_id, group)
        hit = self.payloads.get(key)
        if hit is not None and hit.fits(seq, window, now):
            return hit.payload
        with self.view.lock:
            ids = [dispenser_id] if dispenser_id is not None else self.view.ids(group)
            self.view.resync(now, ids)  # the entries for now: flags and the rate window move without writes
            payload, valid_until = self._compute(dispenser_id, group, ids, now)
        if len(self.payloads) >= PAYLOADS_MAX:
            self.payloads.clear()
        self.payloads[key] = CachedPayload(payload["seq"], window, now, valid_until, payload)
        return payload

    def _compute(self, dispenser_id: str | None, group: str | None, ids: list[str],
                 now: float) -> tuple[Payload, float]:
        """A fresh payload of `ids` from the view and the time until which it holds without any write."""
        view = self.view
        if dispenser_id is not None:
            row = view.rows[dispenser_id]
            gel_ul, hands, passages, updated = row.gel_ul, row.hands, row.entries, row.updated_at
            groups = view.groups_of(ids)
        else:
            gel_ul, hands, passages, updated = view.totals_of(group)
            groups = view.totals.groups(group)
        entries = [view.entries[i] for i in ids]
        payload = Payload(gel_used=gel_ul / 1000, hands_detected=int(hands), entries=int(passages),
                          updated_at=iso(updated or now), dispensers=entries, alerts=alerts_of(entries), seq=view.seq,
                          groups=groups)
        return payload, self._valid_until([view.rows[i] for i in ids], now)

    def delta(self, since: int, group: str | None = None, now: float | None = None) -> Payload | None:
        """What changed after change `since` (in a group if given), or None when none of its dispensers did."""
        view = self.view
        with view.lock:
            seq = view.refresh(time.time() if now is None else now)
            return self.delta_of(view.changed_ids(since) if since < seq else [], since, group)

    def delta_of(self, ids: list[str], base: int, group: str | None = None,
                 seq: int | None = None) -> Payload | None:
        """The delta event for these changed dispensers (those in `group` if given), or None if none is.

        `base` is the sequence number the receiver must hold: the delta carries every change after it, up to
        `seq` (default: the view's; a push round gives the one it read, since a newer one would claim changes
        its `ids` do not hold). The alert list (of the group) is only sent when it may have moved since `base`:
        without the key, the receiver's list stands (a fleet's offline dispensers would otherwise ride along
        with every use).
        """
        view = self.view
        with view.lock:
            if group is not None:
                ids = [i for i in ids if group in view.fleet.ancestors(i)]
            if not ids:
                return None
            gel_ul, hands, passages, updated = view.totals_of(group)
            delta = Payload(base=base, seq=view.seq if seq is None else seq, gel_used=gel_ul / 1000,
                            hands_detected=int(hands), entries=int(passages), updated_at=iso(updated),
                            dispensers=[view.entries[i] for i in ids], removed=[], groups=view.groups_of(ids, group))
            raised, resolved = view.totals.alert_changes(ids, base)
            if raised or resolved:  # what moved, never the whole list: 1,000 offline must not ride along each use
                delta["alerts_added"], delta["alerts_removed"] = raised, resolved
            return delta

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
        """Worked out once per `now`: a build asks it for every dispenser, with the same `now`."""
        at, inside = self.open_at
        if at != now:
            inside = self._opening_hours_hold(now)
            self.open_at = (now, inside)
        return inside

    def _opening_hours_hold(self, now: float) -> bool:
        if not self.cfg.opening_hours:
            return False
        start_s, end_s = self.cfg.opening_hours.split("-")
        start, end = start_s.strip(), end_s.strip()
        local = datetime.fromtimestamp(now, self.store.tz).strftime("%H:%M")
        if start <= end:
            return start <= local < end
        return local >= start or local < end  # past midnight, e.g. "22:00-06:00"

    def _entry(self, row: Any, used_recently: int, now: float) -> dict[str, Any]:
        flags = self._flags(row, now)
        key = (tuple(row), used_recently, flags)
        entry = self.entries.get(key)
        if entry is None:
            self.entries.pop(self.entry_keys.get(row.id), None)  # its previous state: never asked for again
            entry = self.entries[key] = dispenser_entry(row, self.cfg, used_recently, flags)
            self.entry_keys[row.id] = key
        return entry  # shared, not copied: the view only adds the dispenser's own group and path to it

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
        "entries": row.entries,
        "mode": row.mode,
        "test_events": row.test_events,
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
        "stuck": bool(row.stuck),
        "backlog": row.backlog,
        "version": row.version,
    }


def alerts_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alert list: one item per problem, worst kind first (offline, low, no use), then in the entries' order."""
    raised = [(d, alert_kinds(d)) for d in entries]
    return [{"dispenser": d["id"], "name": d["name"], "kind": kind}
            for kind in ALERT_KINDS for d, kinds in raised if kind in kinds]

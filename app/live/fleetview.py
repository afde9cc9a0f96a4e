"""The fleet as of the last change read: rows, entries and group figures, moved by the changed rows alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from app.config import ServerConfig
from app.live.grouptotals import GroupTotals
from app.store import Store

# (row, recent use in µl, now) -> the dispenser's entry
EntryBuilder = Callable[[Any, int, float], dict[str, Any]]


class FleetView:
    """What every payload and delta is cut from, kept at the store's latest change sequence number.

    A refresh reads the change counter, then only the rows stamped after the last one read (through the seq
    index), so a use costs the same with 3 or 3,000 dispensers: one row, one entry, the groups above it.
    """

    def __init__(self, store: Store, cfg: ServerConfig, build: EntryBuilder, window_s: float):
        self.store, self.cfg, self.build, self.window_s = store, cfg, build, window_s
        self.fleet = cfg.fleet
        self.declared = {d.id: i for i, d in enumerate(cfg.dispensers)}
        self.group_order = {g: i for i, g in enumerate(self.fleet.groups)}
        self.lock = threading.RLock()  # payloads and deltas hold it across a refresh
        self.seq = -1  # nothing read yet
        self.gel_ul = self.hands = self.entries_total = 0
        self.updated_at = 0.0
        self.rows: dict[str, Any] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.totals = GroupTotals(self.fleet)
        self.last_read: tuple[int, list[str]] = (-2, [])  # (seq before the last refresh, the ids it read)

    def refresh(self, now: float) -> int:
        """Apply the rows written since the last refresh; return the sequence number now reflected."""
        with self.lock:
            change, rows = self.store.changes_since(self.seq)  # -1 at first: every row
            if change.seq == self.seq:
                return self.seq
            self.last_read = (self.seq, [r.id for r in rows])
            self.seq, self.gel_ul, self.hands = change.seq, change.gel_ul, change.hands
            self.entries_total = change.entries
            self._apply(rows, now, count=True)
            return self.seq

    def resync(self, now: float, ids: list[str]) -> None:
        """Rebuild these entries for `now` (flags, rate window move without writes); memoised, so cheap.

        The group figures are left as the last change set them: a flag that moved with time reaches them (and
        the deltas) when the watchdog gives its dispenser a change number.
        """
        with self.lock:
            self._apply([self.rows[i] for i in ids if i in self.rows], now, count=False)

    def _apply(self, rows: list[Any], now: float, count: bool) -> None:
        """Take these rows as current: their entries rebuilt and, if `count`, the groups above them moved."""
        for r in rows:
            self.rows[r.id] = r
            self.updated_at = max(self.updated_at, r.updated_at)
        mine = [r for r in rows if r.id in self.declared]
        recent = self.store.recent_use_for(now - self.window_s, {r.id: r.events for r in mine})
        for r in mine:
            entry = self.build(r, recent.get(r.id, 0), now)
            entry["group"] = self.fleet.group_of.get(r.id)
            entry["path"] = self.fleet.path(r.id)
            self.entries[r.id] = entry
            if count:
                self.totals.update(entry, r.gel_ul, r.updated_at, self.seq)

    def changed_ids(self, since: int) -> list[str]:
        """The declared dispensers written after change `since`, in declaration order (through the seq index).

        A push asks for what its refresh just read: those ids are kept, so the push reads nothing more.
        """
        before, read = self.last_read
        found = read if since == before and since >= 0 else self.store.ids_changed_since(since)
        ids = [i for i in found if i in self.declared]
        return sorted(ids, key=self.declared.__getitem__)

    def ids(self, group: str | None = None) -> list[str]:
        """The declared dispensers, all or those of a group and its descendants, in declaration order."""
        ids = self.fleet.members[group] if group is not None else list(self.declared)
        return [i for i in ids if i in self.entries]

    def totals_of(self, group: str | None) -> tuple[int, int, int, float]:
        """(gel_ul, hands, entries, newest change stamp) of a group's subtree, or of every row if None.

        Every row's: the use recorded by a dispenser since removed from the config still counts in the totals.
        """
        if group is None:
            return self.gel_ul, self.hands, self.entries_total, self.updated_at
        s = self.totals.sums[group]
        return s.gel_ul, s.hands, s.entries, s.updated_at

    def groups_of(self, ids: list[str], within: str | None = None) -> list[dict[str, Any]]:
        """The group objects above these dispensers (inside `within` if given), in declaration order."""
        wanted = {g for i in ids for g in self.fleet.ancestors(i)}
        if within is not None:
            wanted = {g for g in wanted if within in self.fleet.chains[g]}
        return [self.totals.group(g) for g in sorted(wanted, key=self.group_order.__getitem__)]

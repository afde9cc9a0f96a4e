"""Group figures (use, dispensers, alerts) kept up to date one changed dispenser at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.config.fleet import Fleet

ALERT_KINDS = ("offline", "low", "no_use")  # worst first: the order of the alert list


def alert_kinds(entry: dict[str, Any]) -> tuple[str, ...]:
    """The alerts a dispenser entry raises, worst first."""
    return tuple(k for k, on in (("offline", not entry["online"]), ("low", entry["low"]),
                                 ("no_use", entry["no_use"])) if on)


@dataclass
class GroupSums:
    """One group's figures: the use, dispensers and alerts of its subtree, and its newest change stamp."""

    gel_ul: int = 0
    hands: int = 0
    entries: int = 0
    dispensers: int = 0
    alerts: int = 0
    updated_at: float = 0.0


class GroupTotals:
    """Per group: the use, dispensers and alerts of its subtree, moved by each dispenser's change alone.

    A use then costs the groups above one dispenser (a handful), never a pass over the fleet.
    """

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.sums = {g: GroupSums() for g in fleet.groups}
        self.parts: dict[str, tuple[int, int, int, int]] = {}  # dispenser -> (gel_ul, hands, alerts, entries)
        self.alerting: dict[str, tuple[str, tuple[str, ...]]] = {}  # dispenser -> (name, kinds), if any
        self.alert_seq: dict[str, int] = {}  # dispenser -> the change at which its alerts last moved

    def update(self, entry: dict[str, Any], gel_ul: int, updated_at: float, seq: int) -> None:
        """Count a declared dispenser's entry as of change `seq` in the groups above it."""
        ident = entry["id"]
        kinds = alert_kinds(entry)
        if ident not in self.alert_seq or self.alerting.get(ident, ("", ()))[1] != kinds:
            self.alert_seq[ident] = seq
        if kinds:
            self.alerting[ident] = (entry["name"], kinds)
        else:
            self.alerting.pop(ident, None)
        new = (gel_ul, entry["hands_detected"], len(kinds), entry["entries"])
        old = self.parts.get(ident)
        chain = self.fleet.ancestors(ident)
        for g in chain:
            self.sums[g].updated_at = max(self.sums[g].updated_at, updated_at)
        if old == new:
            return
        self.parts[ident] = new
        base = old or (0, 0, 0, 0)
        for g in chain:
            s = self.sums[g]
            s.gel_ul += new[0] - base[0]
            s.hands += new[1] - base[1]
            s.alerts += new[2] - base[2]
            s.entries += new[3] - base[3]
            s.dispensers += old is None

    def group(self, ident: str) -> dict[str, Any]:
        """One group's object as the payload carries it."""
        decl, s = self.fleet.groups[ident], self.sums[ident]
        return {"id": ident, "name": decl.name, "parent": decl.parent, "gel_used": s.gel_ul / 1000,
                "hands_detected": int(s.hands), "entries": int(s.entries), "dispensers": s.dispensers,
                "alerts": s.alerts}

    def groups(self, within: str | None = None) -> list[dict[str, Any]]:
        """Every group (or `within` and its descendants), in declaration order."""
        ids = self.fleet.subtrees[within] if within is not None else list(self.fleet.groups)
        return [self.group(g) for g in ids]

    def alert_changes(self, ids: list[str], since: int) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """(raised, resolved) for the dispensers among `ids` whose alerts moved after change `since`.

        Resolved lists every kind such a dispenser does not raise now: a receiver drops it if it held it.
        """
        raised: list[dict[str, Any]] = []
        resolved: list[dict[str, str]] = []
        for ident in ids:
            if self.alert_seq.get(ident, since + 1) <= since:
                continue
            name, kinds = self.alerting.get(ident, ("", ()))
            raised += [{"dispenser": ident, "name": name, "kind": k} for k in kinds]
            resolved += [{"dispenser": ident, "kind": k} for k in ALERT_KINDS if k not in kinds]
        return raised, resolved

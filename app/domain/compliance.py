"""Compliance figures of a group (a ward) per local day or week: rates against entries and against the census.

Use comes from the day rollups (never the events table), the denominator from the door counters (`entries`) and
from the census times the expected opportunities per patient-day. A period during which a dispenser of the group
was offline is flagged, never read as zero use. docs/compliance.md explains each figure and its limits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.config import ServerConfig
from app.config.fleet import GroupDecl
from app.store import Store
from app.store.contact import outages_between
from app.store.wards import census_between, day_sums, dispenser_states, first_day

# HAND-KISS (German national surveillance) medians of alcohol rub used, ml per patient-day, by type of ward.
HAND_KISS_ML = {"icu": 137.0, "intermediate": 71.0, "regular": 33.0}
BUCKETS = ("day", "week")


def midnight(day: date, tz: ZoneInfo | None) -> float:
    """The instant a local date starts (the day rollups' start), in the site's zone or the machine's."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def pct(part: float, whole: float | None) -> float | None:
    """part ÷ whole × 100, rounded to 2 decimals; None without a denominator."""
    return round(100 * part / whole, 2) if whole else None


@dataclass
class Period:
    """The figures of one period (a day, or the days of one week inside the range asked for)."""

    first: date
    days: int = 0
    gel_ul: int = 0
    hands: int = 0
    entries: int = 0
    patient_days: int = 0
    expected: float | None = 0.0  # None once a census day of the period has no opportunities configured
    census_days: int = 0
    offline: set[str] = field(default_factory=set)
    partial: bool = False  # the period is not over yet
    days_so_far: int = 0  # the days begun: a day to come adds nothing, so a week going on has its rates so far
    census_missing: set[str] = field(default_factory=set)  # groups with dispensers lacking a census on a day
    census_by: tuple[str, float] | None = None  # a day's own census: who entered it and when
    before_first: bool = False  # every day of it before the group's first counted dose or entry

    def add(self, other: Period) -> None:
        """Add a day's figures to this period."""
        self.before_first = other.before_first and (self.before_first or self.days == 0)
        self.days += other.days
        self.days_so_far += other.days_so_far
        self.census_missing |= other.census_missing
        self.gel_ul += other.gel_ul
        self.hands += other.hands
        self.entries += other.entries
        self.patient_days += other.patient_days
        self.census_days += other.census_days
        self.expected = None if self.expected is None or other.expected is None else self.expected + other.expected
        self.offline |= other.offline
        self.partial = self.partial or other.partial

    def row(self, bucket: str) -> dict[str, Any]:
        """The period as an answer row; rates need a census on every day of the period so far."""
        complete = 0 < self.census_days == self.days_so_far
        expected = round(self.expected, 2) if complete and self.expected is not None else None
        row: dict[str, Any] = {"start": self.first.isoformat()}
        if bucket == "week":
            iso = self.first.isocalendar()
            row |= {"week": f"{iso.year}-W{iso.week:02d}",
                    "end": (self.first + timedelta(days=self.days - 1)).isoformat()}
        return row | {
            "days": self.days, "days_so_far": self.days_so_far, "hands": self.hands, "gel_ml": self.gel_ul / 1000,
            "entries": self.entries, "entry_rate_pct": pct(self.hands, self.entries),
            "patient_days": self.patient_days if self.census_days else None, "census_days": self.census_days,
            "census_missing": sorted(self.census_missing), "expected_opportunities": expected,
            "compliance_pct": pct(self.hands, expected),
            "ml_per_patient_day": round(self.gel_ul / 1000 / self.patient_days, 2)
            if complete and self.patient_days else None,
            "offline": bool(self.offline), "offline_dispensers": sorted(self.offline), "partial": self.partial,
            "no_dispensers_yet": self.before_first,
        } | self.entered_by()

    def entered_by(self) -> dict[str, Any]:
        """For a day with its group's own census: who entered it and when."""
        if self.census_by is None:
            return {}
        by, at = self.census_by
        return {"census_by": by, "census_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")}


class Census:
    """Patients per group and day, and the expected opportunities they give, down a group's subtree.

    A group's own census counts for its day; without one, its sub-groups' are summed, and only if each sub-group
    holding dispensers has one: their hands are in the group's, so their patients must be in its denominator
    (a building's rate over one ward's patients would be inflated). Sub-groups without dispensers add nothing.
    Opportunities per patient-day are the group's, else its parent's.
    """

    def __init__(self, cfg: ServerConfig, rows: list[Any]):
        self.fleet = cfg.fleet
        self.patients = {(r.group_id, r.day): r.patients for r in rows}
        self.entered = {(r.group_id, r.day): (r.by, r.updated_at) for r in rows}  # who entered it, and when
        self.children: dict[str | None, list[str]] = {None: []}
        for g in self.fleet.groups.values():
            if self.fleet.members[g.id]:
                self.children.setdefault(g.parent, []).append(g.id)

    def opportunities(self, group: str | None) -> float | None:
        """Opportunities per patient-day of a group: its own, else the nearest ancestor's."""
        return self.fleet.inherited(group, "opportunities_per_patient_day")

    def of(self, group: str | None, day: str) -> tuple[tuple[int, float | None] | None, list[str]]:
        """(patients, expected opportunities) of a group's subtree on a day, or None with the groups missing."""
        own = self.patients.get((group, day))  # the whole fleet (None) has no census of its own
        if own is not None:
            opportunities = self.opportunities(group)
            return (own, own * opportunities if opportunities is not None else None), []
        children = self.children.get(group, [])
        if not children:
            return None, [group] if group is not None else []
        found = [self.of(child, day) for child in children]
        missing = [g for _, lacking in found for g in lacking]
        counts = [c for c, _ in found if c is not None]
        if missing:  # never a sum of part of the wards
            return None, missing
        expected = [e for _, e in counts]
        return (sum(p for p, _ in counts), None if None in expected else sum(expected)), []


def offline_intervals(store: Store, cfg: ServerConfig, ids: list[str] | None, start: float,
                      now: float) -> dict[str, list[tuple[float, float]]]:
    """Per dispenser, its silences from `start` on: the recorded outages and the one going on now (if any)."""
    found: dict[str, list[tuple[float, float]]] = {}
    declared = set(cfg.fleet.group_of)  # a dispenser no longer in the config: its silence is nobody's
    for r in outages_between(store, ids, start, now):
        if r.dispenser_id in declared:
            found.setdefault(r.dispenser_id, []).append((r.began, r.ended))
    for r in (r for r in dispenser_states(store, ids) if r.id in declared):
        if r.last_seen is None:  # never heard from: nothing it counted can be in the figures
            found.setdefault(r.id, []).append((float("-inf"), now))
        elif now - r.last_seen > cfg.offline_after_s:
            found.setdefault(r.id, []).append((r.last_seen + cfg.offline_after_s, now))
    return found


def daily(store: Store, cfg: ServerConfig, group: str | None, first: date, last: date, now: float) -> list[Period]:
    """One Period per local day from `first` to `last` included."""
    tz = store.tz
    members = list(cfg.fleet.members[group]) if group is not None else None
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    starts = [midnight(d, tz) for d in days] + [midnight(last + timedelta(days=1), tz)]
    sums = day_sums(store, members, int(starts[0]), int(starts[-1]))
    subtree = cfg.fleet.subtrees[group] if group is not None else None
    census = Census(cfg, census_between(store, subtree, first.isoformat(), last.isoformat()))
    silences = offline_intervals(store, cfg, members, starts[0], now)
    # Before the group's first counted dose or entry, a day without a census is "no dispensers yet", not zero use
    # lacking a census (docs/compliance.md).
    began = first_day(store, members)
    periods = []
    for d, a, b in zip(days, starts, starts[1:], strict=False):
        gel, hands, entries = sums.get(int(a), (0, 0, 0))
        p = Period(d, 1, gel, hands, entries, partial=b > now, days_so_far=int(a <= now))
        counted, missing = census.of(group, d.isoformat()) if a <= now else (None, [])
        # A day with a census is a day of the ward even without a use (0 %, never hidden). Without one, still a day
        # of its week (a week's rate needs a census on each) and a dispenser never heard from is still offline.
        p.before_first = began is not None and a < began and counted is None
        p.census_missing = set() if p.before_first else set(missing)
        if counted is not None:
            p.patient_days, p.expected, p.census_days = counted[0], counted[1], 1
            p.census_by = census.entered.get((group, d.isoformat()))
        p.offline = {i for i, spans in silences.items() if a < now and any(s < b and e > a for s, e in spans)}
        periods.append(p)
    return periods


def weekly(days: list[Period]) -> list[Period]:
    """The days grouped by ISO week (Monday first); the first and last weeks hold only the days asked for.

    A week going on counts its days so far (a day to come has days_so_far 0 and adds nothing else).
    """
    weeks: list[Period] = []
    for d in days:
        if not weeks or d.first.isocalendar()[:2] != weeks[-1].first.isocalendar()[:2]:
            weeks.append(Period(d.first))
        weeks[-1].add(d)
    return weeks


def group_settings(cfg: ServerConfig, group: str | None) -> dict[str, Any]:
    """The group's name, path, target and reference values, as the answers carry them."""
    decl: GroupDecl | None = cfg.fleet.groups.get(group)  # None: the whole fleet
    chain = cfg.fleet.chains.get(group, ())
    kind = decl.ward_type if decl else None
    return {
        "group": group, "name": decl.name if decl else None,
        "path": [cfg.fleet.groups[g].name for g in chain],
        "target_pct": cfg.fleet.inherited(group, "target_pct"),
        "opportunities_per_patient_day": cfg.fleet.inherited(group, "opportunities_per_patient_day"),
        "ward_type": kind, "reference_ml_per_patient_day": HAND_KISS_ML.get(kind or ""),
    }


def compliance(store: Store, cfg: ServerConfig, group: str | None, first: date, last: date, bucket: str,
               now: float | None = None) -> dict[str, Any]:
    """The compliance answer: the group's settings and one row per day or week."""
    now = time.time() if now is None else now
    days = daily(store, cfg, group, first, last, now)
    periods = days if bucket == "day" else weekly(days)
    return group_settings(cfg, group) | {
        "bucket": bucket, "from": first.isoformat(), "to": last.isoformat(),
        "rows": [p.row(bucket) for p in periods],
    }

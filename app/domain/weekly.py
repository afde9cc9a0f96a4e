"""The weekly report of a group: the week's rates, the weeks before, the dispensers offline or empty."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.config import ServerConfig
from app.domain.compliance import daily, group_settings, midnight, offline_intervals, weekly
from app.store import Store
from app.store.wards import census_between, dispenser_states, dispenser_sums, late_arrivals, refills_between

PREVIOUS_WEEKS = 8  # the weeks before the report's: the page, the JSON and the CSV all show these


def overlap(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end) covered by these (non-overlapping) spans."""
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in spans)


def dispenser_rows(store: Store, cfg: ServerConfig, group: str | None, start: float, end: float,
                   now: float) -> list[dict[str, Any]]:
    """Each dispenser of the group over [start, end): its use, its time offline, its refills, whether it ran empty.

    "Ran empty" is what the level computation can tell: a refill during the week that found the reservoir's
    capacity used up, or, for the week going on, a level at 0 now.
    """
    members = list(cfg.fleet.members[group]) if group is not None else list(cfg.fleet.group_of)
    sums = dispenser_sums(store, members, int(start), int(end))
    silences = offline_intervals(store, cfg, members, start, now)
    states = {r.id: r for r in dispenser_states(store, members)}
    refills: dict[str, list[Any]] = {}
    for r in refills_between(store, members, start, end):
        refills.setdefault(r.dispenser_id, []).append(r)
    rows = []
    for ident in members:
        state = states.get(ident)
        if state is None:
            continue
        gel, hands, entries = sums.get(ident, (0, 0, 0))
        capacity_ul = state.capacity_ml * 1000
        empty_now = end > now and state.gel_ul - state.refill_gel_ul >= capacity_ul
        offline_s = overlap(silences.get(ident, []), start, min(end, now))
        rows.append({
            "id": ident, "name": state.name, "path": cfg.fleet.path(ident), "mode": state.mode,
            "hands": hands, "gel_ml": gel / 1000, "entries": entries,
            "offline": offline_s > 0, "offline_s": round(offline_s),
            "refills": len(refills.get(ident, [])),
            "ran_empty": empty_now or any(r.gel_ul_before >= capacity_ul for r in refills.get(ident, [])),
        })
    return rows


def weekly_report(store: Store, cfg: ServerConfig, group: str | None, monday: date,
                  now: float | None = None) -> dict[str, Any]:
    """The report of the ISO week starting on `monday`, with the PREVIOUS_WEEKS before it."""
    now = time.time() if now is None else now
    sunday = monday + timedelta(days=6)
    days = daily(store, cfg, group, monday - timedelta(weeks=PREVIOUS_WEEKS), sunday, now)
    weeks = [p.row("week") for p in weekly(days)]
    iso = monday.isocalendar()
    start, end = midnight(monday, store.tz), midnight(sunday + timedelta(days=1), store.tz)
    return group_settings(cfg, group) | {
        "week": f"{iso.year}-W{iso.week:02d}", "from": monday.isoformat(), "to": sunday.isoformat(),
        "summary": weeks[-1], "previous": weeks[:-1], "days": [p.row("day") for p in days[-7:]],
        "dispensers": dispenser_rows(store, cfg, group, start, end, now),
        "late": late_doses(store, cfg, group, start, end),
        "census": census_entries(store, cfg, group, monday, sunday),
    }


def census_entries(store: Store, cfg: ServerConfig, group: str | None, monday: date, sunday: date,
                   ) -> list[dict[str, Any]]:
    """The week's census values of the group and its descendants, each with who entered it and when."""
    groups = list(cfg.fleet.subtrees[group]) if group is not None else None
    return [{"group": r.group_id, "date": r.day, "patients": r.patients, "by": r.by,
             "at": datetime.fromtimestamp(r.updated_at, UTC).isoformat().replace("+00:00", "Z")}
            for r in census_between(store, groups, monday.isoformat(), sunday.isoformat())]


def late_doses(store: Store, cfg: ServerConfig, group: str | None, start: float, end: float) -> dict[str, Any]:
    """Doses of the week recorded late, and those that arrived after it ended: a report printed before differs."""
    members = list(cfg.fleet.members[group]) if group is not None else None
    late, after_end, last = late_arrivals(store, members, start, end)
    return {"late": late, "after_week": after_end,
            "last_after_week": datetime.fromtimestamp(last, UTC).isoformat() if last is not None else None}

"""The weekly report by email: due on its day and time, written once to the outbox, the CSV attached."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from app.config import ServerConfig
from app.config.outlets import ReportSchedule
from app.domain.sheets import csv_text, report_rows
from app.domain.weekly import weekly_report
from app.notify.texts import number, strings
from app.notify.tracker import message_id
from app.store import Store
from app.store.outbox import enqueue, has_message

LATE_LIMIT_S = 24 * 3600  # a report whose time passed while the server was down goes out within a day, not later


def last_slot(schedule: ReportSchedule, now: float, timezone: str | None) -> datetime:
    """The latest scheduled day and time at or before `now`, in local time."""
    local = datetime.fromtimestamp(now, ZoneInfo(timezone) if timezone else None)
    day = local - timedelta(days=(local.weekday() - schedule.weekday) % 7)
    slot = day.replace(hour=schedule.minute // 60, minute=schedule.minute % 60, second=0, microsecond=0)
    return slot if slot <= local else slot - timedelta(days=7)


def reported_week(slot: datetime) -> date:
    """The Monday of the last whole ISO week before the slot."""
    return slot.date() - timedelta(days=slot.weekday() + 7)


def email(cfg: ServerConfig, answer: dict[str, Any], group_name: str) -> tuple[str, str]:
    """(title, HTML body) of a week's report; Apprise adds the plain-text alternative."""
    t, lang = strings(cfg.language), cfg.language
    week = answer["summary"]
    rate = week.get("compliance_pct")
    rows = [(t["report_hands"], week.get("hands")), (t["report_gel"], number(week.get("gel_ml") or 0, lang)),
            (t["report_rate"], f"{number(rate, lang)} %" if rate is not None else "—"),
            (t["report_target"], f"{number(answer['target_pct'], lang)} %" if answer.get("target_pct") else "—"),
            (t["report_patient_days"], week.get("patient_days")),
            (t["report_census_missing"], week.get("census_missing")),
            (t["report_offline"], week.get("offline_dispensers")), (t["report_late"], answer["late"]["after_week"])]
    title = t["report_title"].format(group=group_name, week=answer["week"])
    summary = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v if v is not None else '—'))}</td></tr>"
                      for k, v in rows)
    yes, no = t["report_yes"], t["report_no"]
    dispensers = "".join(f"<tr><td>{escape(d['name'])}</td><td>{d['hands']}</td><td>{number(d['gel_ml'], lang)}</td>"
                         f"<td>{d['refills']}</td><td>{yes if d['ran_empty'] else no}</td></tr>"
                         for d in answer["dispensers"])
    link = ""
    if cfg.public_url:
        url = f"{cfg.public_url.rstrip('/')}/rapport?week={answer['week']}" + \
            (f"&group={answer['group']}" if answer.get("group") else "")
        link = f'<p><a href="{escape(url)}">{escape(t["report_link"])}</a></p>'
    html = (f"<h1>{escape(title)}</h1><p>{escape(t['report_intro'].format(start=answer['from'], end=answer['to']))}"
            f"</p><table>{summary}</table><h2>{escape(t['report_dispensers'])}</h2><table><tr>"
            f"<th>{escape(t['report_name'])}</th><th>{escape(t['report_hands'])}</th><th>{escape(t['report_gel'])}"
            f"</th><th>{escape(t['report_refills'])}</th><th>{escape(t['report_ran_empty'])}</th></tr>{dispensers}"
            f"</table>{link}")
    return title, html


def queue_due_reports(store: Store, cfg: ServerConfig, now: float, done: set[str]) -> int:
    """Write to the outbox each report whose time has come and that is not there yet; how many."""
    queued = 0
    for schedule in cfg.reports:
        slot = last_slot(schedule, now, cfg.timezone)
        if now - slot.timestamp() > LATE_LIMIT_S:
            continue
        monday = reported_week(slot)
        msg = message_id("report", schedule.target.id, schedule.group, monday.isoformat())
        if msg in done or has_message(store, schedule.target.id, msg):
            done.add(msg)
            continue
        answer = weekly_report(store, cfg, schedule.group, monday, now)
        answer["group"] = schedule.group
        name = cfg.fleet.groups[schedule.group].name if schedule.group else strings(cfg.language)["fleet"]
        title, html = email(cfg, answer, name)
        body = {"title": title, "html": html, "csv": csv_text(*report_rows(answer)),
                "filename": f"report-{schedule.group or 'all'}-{answer['week']}.csv"}
        enqueue(store, [{"target": schedule.target.id, "msg_id": msg, "type": "report.weekly", "created_at": now,
                         "due_at": now, "body": json.dumps(body, ensure_ascii=False)}])
        done.add(msg)
        queued += 1
    return queued

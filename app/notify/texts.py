"""What a notification says: the webhook's data, and a short title and body for a phone, in the server's language."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

CATALOGS = Path(__file__).resolve().parent.parent / "translations"


@cache
def strings(lang: str) -> dict[str, str]:
    """The `notify` part of app/translations/<lang>.json."""
    return json.loads((CATALOGS / f"{lang}.json").read_text(encoding="utf-8"))["notify"]


def clock(ts: float | None, timezone: str | None) -> str:
    """A time of day as people read it: 14:02."""
    if ts is None:
        return "?"
    return datetime.fromtimestamp(ts, ZoneInfo(timezone) if timezone else None).strftime("%H:%M")


def duration(seconds: float) -> str:
    """2 h 10, 35 min."""
    minutes = max(0, round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d}" if minutes >= 60 else f"{minutes} min"


def number(value: float, lang: str) -> str:
    """3.3 in English, 3,3 in French."""
    text = f"{value:g}"
    return text.replace(".", ",") if lang == "fr" else text


def where(data: dict[str, Any]) -> str:
    """The dispenser and its ward: "Chambre A112 (Cardiologie)"."""
    path = data.get("path") or []
    return f"{data['name']} ({path[-1]})" if path else data["name"]


def alert_text(lang: str, timezone: str | None, kind_of: str, data: dict[str, Any], now: float) -> tuple[str, str]:
    """(title, body) of one transition; `kind_of` is "raised" or "resolved"."""
    t = strings(lang)
    kind = data["kind"]
    empty_ts = data.get("empty_at_ts")
    values = {"where": where(data), "since": clock(data.get("since_ts"), timezone),
              "level": number(data.get("level_pct") or 0, lang), "at": clock(now, timezone),
              "duration": duration(now - (data.get("since_ts") or now)),
              "empty": t["empty"].format(at=clock(empty_ts, timezone)) if empty_ts else ""}
    title = t[f"title_raised_{kind}"] if kind_of == "raised" else t["title_resolved"]
    return title, t[f"{kind_of}_{kind}"].format(**values)


def digest_text(lang: str, group_name: str | None, items: list[dict[str, Any]]) -> tuple[str, str]:
    """(title, body) of one message for many transitions: how many, where, which kinds, the first names."""
    t = strings(lang)
    group = group_name or t["fleet"]
    kinds: dict[str, int] = {}
    for item in items:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    listed = ", ".join(f"{t['kind_' + k]} ×{n}" for k, n in kinds.items())
    names = ", ".join(where(i) for i in items[:10])
    more = t["digest_more"].format(count=len(items) - 10) if len(items) > 10 else ""
    body = t["digest"].format(count=len(items), group=group, kinds=listed) + "\n" + names + more
    return t["title_digest"].format(count=len(items), group=group), body

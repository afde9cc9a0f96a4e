"""One Figures object answers the no-use flag for the time asked, as it crosses the opening hours (its answer is
worked out once per build, never kept from an earlier one)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app.config import server_config
from app.live.figures import Figures
from app.store import Store


def test_no_use_follows_the_opening_hours_across_builds(tmp_path: Path) -> None:
    cfg = server_config({"database": f"sqlite:///{tmp_path / 'hours.db'}", "timezone": "UTC",
                         "opening_hours": "08:00-18:00", "no_use_alert_min": 1,
                         "dispensers": [{"id": "entree", "token": "entree-token-0123456789"}]}, tmp_path)
    figures = Figures(Store(cfg.database, cfg.dispensers, cfg.timezone, cfg.offline_after_s), cfg)

    def idle_at(hour: int, minute: int) -> bool:
        now = datetime(2026, 3, 28, hour, minute, tzinfo=UTC).timestamp()
        return figures.payload(now=now)["dispensers"][0]["no_use"]

    assert [idle_at(7, 59), idle_at(8, 0), idle_at(12, 30), idle_at(17, 59), idle_at(18, 0), idle_at(9, 0)] == [
        False, True, True, True, False, True]

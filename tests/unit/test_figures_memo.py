"""A fleet larger than the entry memo's floor keeps every entry: a later payload rebuilds none of them."""

from __future__ import annotations

from pathlib import Path

from app.config import server_config
from app.live.figures import ENTRIES_MAX, Figures
from app.store import Store


def test_a_second_payload_of_a_large_fleet_rebuilds_no_entry(tmp_path: Path) -> None:
    n = ENTRIES_MAX + 1000  # past the floor: a fixed-size memo would start afresh halfway through each build
    cfg = server_config({"database": f"sqlite:///{tmp_path / 'memo.db'}", "timezone": "UTC",
                         "dispensers": [{"id": f"d{i:05d}", "token": f"token-{i:05d}-0123456789"} for i in range(n)]},
                        tmp_path)
    figures = Figures(Store(cfg.database, cfg.dispensers, cfg.timezone, cfg.offline_after_s), cfg)
    first = figures.payload(now=1_800_000_000.0)
    kept = dict(figures.entries)
    assert len(kept) == n  # one memoised entry per dispenser, none dropped to make room
    figures.payloads.clear()  # as after any write: the whole payload is built again
    second = figures.payload(now=1_800_000_001.0)
    assert second is not first and second["dispensers"] == first["dispensers"]
    assert figures.entries.keys() == kept.keys()  # every entry came from the memo: nothing was built again

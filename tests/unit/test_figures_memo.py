"""The entry memo holds the whole fleet and no more: a later payload rebuilds no entry, a write replaces one."""

from __future__ import annotations

from pathlib import Path

from app.config import server_config
from app.live.figures import Figures
from app.store import Store


def test_a_second_payload_of_a_large_fleet_rebuilds_no_entry(tmp_path: Path) -> None:
    n = 5000  # larger than the memo's former fixed size (4,096), which started afresh halfway through each build
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
    assert figures.entries.keys() == kept.keys()
    assert all(figures.entries[key] is entry for key, entry in kept.items())  # from the memo: nothing built again


def test_a_dispensers_new_state_replaces_its_memoised_one(tmp_path: Path) -> None:
    cfg = server_config({"database": f"sqlite:///{tmp_path / 'memo.db'}", "timezone": "UTC", "offline_after_s": 60,
                         "dispensers": [{"id": f"d{i}", "token": f"token-{i:05d}-0123456789"} for i in range(3)]},
                        tmp_path)
    store = Store(cfg.database, cfg.dispensers, cfg.timezone, cfg.offline_after_s)
    figures = Figures(store, cfg)
    for k in range(5):  # each dispenser heard from, then silent long enough to go offline: new states each time
        store.heartbeat("d0", backlog=0, version=None, missed=None, now=1_800_000_000.0 + 100 * k)
        figures.payload(now=1_800_000_000.0 + 100 * k + 30)
        figures.payload(now=1_800_000_000.0 + 100 * k + 90)
    assert len(figures.entries) == 3  # one per dispenser, whatever the states it went through

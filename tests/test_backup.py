"""The online SQLite backup stays consistent while writes go on."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest
import requests

from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS
from tests.helpers.servers import ROOT, wait_for

pytestmark = pytest.mark.slow  # real server and backup processes


def test_backup_while_a_dispenser_keeps_posting(server_factory, write_config, tmp_path):
    config = write_config(database="sqlite:///usage.db", async_mode="eventlet")
    srv = server_factory(config)
    stop, acked = threading.Event(), []

    def stream() -> None:
        n = 0
        while not stop.is_set():
            body = [{"gel_used": 1.5, "hands_detected": 1, "event_id": f"b{n}-{i}"} for i in range(20)]
            r = requests.post(srv.url + "/mettre_a_jour_donnees", json=body, timeout=10,
                              headers=bearer(TOKENS['entree']))
            if r.status_code == 200:
                acked.append(n)
            n += 1

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        wait_for(lambda: len(acked) >= 10, 20, message="writes under way")
        copies = []
        for i in range(3):
            dest = tmp_path / f"copy{i}.db"
            proc = subprocess.run([sys.executable, "-m", "app.backup", "--config", str(config), str(dest)],
                                  cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            copies.append(dest)
        still_writing = len(acked)
        wait_for(lambda: len(acked) > still_writing, 20, message="writes continued during the backups")
    finally:
        stop.set()
        writer.join(20)
    for dest in copies:
        db = sqlite3.connect(dest)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # A snapshot of one instant: running totals, rollups and events all agree.
        total_hands, total_gel = db.execute("SELECT hands, gel_ul FROM dispensers WHERE id = 'entree'").fetchone()
        assert db.execute("SELECT count(*), sum(gel_ul) FROM events").fetchone() == (total_hands, total_gel)
        assert db.execute("SELECT sum(events) FROM rollups WHERE size = 'hour'").fetchone()[0] == total_hands
        assert total_hands > 0 and total_hands % 20 == 0
        db.close()


def test_backup_refuses_postgresql(tmp_path):
    cfg = tmp_path / "pg.toml"
    cfg.write_text('[server]\ndatabase = "postgresql://postgres@127.0.0.1/x"\n')
    proc = subprocess.run([sys.executable, "-m", "app.backup", "--config", str(cfg), str(tmp_path / "x.db")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "pg_dump" in proc.stderr

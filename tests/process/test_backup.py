"""The online SQLite backup stays consistent while writes go on."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from devkit.servers import ROOT, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS

pytestmark = pytest.mark.slow  # real server and backup processes


# A stepped SQLite backup starts over whenever another connection commits between two steps: the database spans
# many steps of 1024 pages (4 MiB), so a backup taken that way would restart again and again under these writes.
FILLER_ROWS = 100_000  # about 25 MiB of events and indexes: several steps
# Copying 25 MiB takes well under a second here; 120 s leaves room for a CI machine tens of times slower, while a
# backup that restarts for ever under the steady writes below never finishes at all.
BACKUP_LIMIT_S = 120


def _prefill(db_path) -> None:
    """FILLER_ROWS events of cafeteria, written straight to the file (the server's ingest would take minutes)."""
    db = sqlite3.connect(db_path, timeout=30)
    with db:
        db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {FILLER_ROWS})
                       INSERT INTO events (dispenser_id, event_id, ts, received_at, gel_ul, hands)
                       SELECT 'cafeteria', printf('filler-%058d', i), 1.7e9 + i, 1.7e9 + i, 1500, 1 FROM n""")
    db.close()
    assert Path(db_path).stat().st_size > 4 * 4 * 1024 * 1024, "the database must span several backup steps"


def test_backup_while_a_dispenser_keeps_posting(server_factory, write_config, tmp_path):
    # No per-dispenser rate limit: the writes below go as fast as they can, and every one must answer 200.
    config = write_config(database="sqlite:///usage.db", async_mode="eventlet", dispenser_events_per_min=0)
    srv = server_factory(config)
    _prefill(tmp_path / "usage.db")
    stop, acked, refused = threading.Event(), [], []

    def stream(writer: int) -> None:
        n = 0
        while not stop.is_set():
            body = [{"gel_used": 1.5, "hands_detected": 1, "event_id": f"b{writer}-{n}-{i}"} for i in range(20)]
            try:
                r = requests.post(srv.url + "/mettre_a_jour_donnees", json=body, timeout=30,
                                  headers=bearer(TOKENS["entree"]))
            except requests.RequestException as exc:
                refused.append((n, repr(exc)))
                return
            (acked if r.status_code == 200 else refused).append((n, r.status_code, r.text[:200]))
            n += 1

    # Three dispensers' worth of steady writes: a commit lands between almost any two backup steps.
    writers = [threading.Thread(target=stream, args=(w,)) for w in range(3)]
    for writer in writers:
        writer.start()
    copies = []
    try:
        wait_for(lambda: len(acked) >= 10, 20, message="writes under way")
        for i in range(3):
            dest = tmp_path / f"copy{i}.db"
            before = len(acked)
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "app.backup", "--config", str(config), str(dest)],
                                  cwd=ROOT, capture_output=True, text=True, timeout=BACKUP_LIMIT_S)
            assert proc.returncode == 0, proc.stderr
            copies.append((dest, time.monotonic() - started))
            assert len(acked) > before, "no write was acknowledged while the backup ran"
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
    assert not refused, refused[:5]  # every POST during the backups answered 200
    for dest, _ in copies:
        db = sqlite3.connect(dest)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # A snapshot of one instant: running totals, rollups and events all agree.
        total_hands, total_gel = db.execute("SELECT hands, gel_ul FROM dispensers WHERE id = 'entree'").fetchone()
        assert db.execute("SELECT count(*), sum(gel_ul) FROM events WHERE dispenser_id = 'entree'").fetchone() == (
            total_hands, total_gel)
        assert db.execute("SELECT sum(events) FROM rollups WHERE size = 'hour' AND dispenser_id = 'entree'"
                          ).fetchone()[0] == total_hands
        assert total_hands > 0 and total_hands % 20 == 0
        assert db.execute("SELECT count(*) FROM events WHERE dispenser_id = 'cafeteria'").fetchone()[0] == FILLER_ROWS
        db.close()


def test_backup_refuses_postgresql(tmp_path):
    cfg = tmp_path / "pg.toml"
    cfg.write_text('[server]\ndatabase = "postgresql://postgres@127.0.0.1/x"\n')
    proc = subprocess.run([sys.executable, "-m", "app.backup", "--config", str(cfg), str(tmp_path / "x.db")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "pg_dump" in proc.stderr

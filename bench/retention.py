"""The `retention` step: a purge of old raw events costs the POSTs little.

A store of 100 dispensers is prefilled with BENCH_RETENTION_EVENTS (default 5 million) raw events 500 days old,
with random uuid4 event ids as real dispensers send. The same store is then served twice: first without
`keep_events_days` (no purge), then with `keep_events_days = 400`, whose purge starts with the server. wrk's
single-event POST p99 in rounds of WRK_S seconds: without, then during the purge (only rounds that ended while the
purge was still running count). Also: the purge's rate and the file's size before and after (incremental vacuum).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import load_config
from app.store import Store
from bench.common import median, now_iso, wrk
from bench.context import RUN, Fault, write_config
from devkit.servers import ServerProcess, wait_for

if TYPE_CHECKING:
    from bench.context import Bench

EVENTS = int(os.environ.get("BENCH_RETENTION_EVENTS", "5000000"))
REPS, WRK_S = 3, 3
OLD_DAYS = 500
DONE = re.compile(r"retention: (\d+) events older than \S+ days deleted in ([\d.]+) s")


def prefill_old(config: Path, total: int, now: float) -> float:
    """`total` events OLD_DAYS old over every dispenser, in SQL (a few hundred thousand rows a second); seconds."""
    cfg = load_config(config)
    store = Store(cfg.database, cfg.dispensers)  # the schema, as this release creates it (incremental vacuum)
    path = store.engine.url.database
    store.engine.dispose()
    t0 = time.perf_counter()
    db = sqlite3.connect(path, timeout=30)
    with db:
        db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {total - 1})
                       INSERT INTO events (dispenser_id, event_id, ts, received_at, gel_ul, hands)
                       SELECT printf('d%03d', i % {len(cfg.dispensers)}), lower(hex(randomblob(16))),
                              {now - OLD_DAYS * 86400} + i * 0.5, {now - OLD_DAYS * 86400} + i * 0.5, 1500, 1
                       FROM n""")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - t0


def serve(b: Bench, config: Path, name: str) -> ServerProcess:
    srv = ServerProcess(config)
    b.running[f"retention-{name}"] = srv
    return srv.start(120)


def rounds(srv: ServerProcess, name: str, purging: bool) -> list[dict[str, Any]]:
    """Up to REPS wrk rounds; while `purging`, only those that ended before the purge did."""
    runs = []
    for rep in range(REPS):
        run = wrk(srv.url + "/mettre_a_jour_donnees", "post.lua", (f"r{rep}{name}", "1", "100"), WRK_S)
        if purging and DONE.search(srv.log()):
            break  # this round saw the end of the purge: it does not measure "during"
        runs.append(run)
    return runs


def step(b: Bench) -> None:
    """POST p99 during a purge of EVENTS old events against the same store without one."""
    directory = RUN / "retention"
    config = write_config(directory, "usage.db")
    db_file = directory / "usage.db"
    now = time.time()
    fill_s = prefill_old(config, EVENTS, now)
    size_before = db_file.stat().st_size
    srv = serve(b, config, "without")
    without = rounds(srv, "without", purging=False)
    srv.stop()
    b.running.pop("retention-without")
    text = config.read_text()
    config.write_text(text.replace("[server]\n", "[server]\nkeep_events_days = 400\n", 1))
    srv = serve(b, config, "purging")
    during = rounds(srv, "purging", purging=True)
    if not during:
        raise Fault(f"the purge of {EVENTS} events ended within one {WRK_S} s round: raise BENCH_RETENTION_EVENTS")
    wait_for(lambda: DONE.search(srv.log()), 3600, message="the end of the purge")
    deleted, took = DONE.search(srv.log()).groups()  # type: ignore[union-attr]
    if int(deleted) != EVENTS:
        raise Fault(f"the purge deleted {deleted} events of {EVENTS}")
    srv.stop()
    b.running.pop("retention-purging")
    b.fig["retention"] = {
        "date": now_iso(), "events": EVENTS, "prefill_s": fill_s, "purge_s": float(took),
        "purge_events_per_s": EVENTS / float(took), "bytes_before": size_before,
        "bytes_after": db_file.stat().st_size,
        "post": {"without": {"p99_ms": median([r["p99_ms"] for r in without]),
                             "rps": median([r["rps"] for r in without]), "runs": without},
                 "purging": {"p99_ms": median([r["p99_ms"] for r in during]),
                             "rps": median([r["rps"] for r in during]), "runs": during}},
    }

"""Fill a store fast with N events over 30 days and 100 dispensers: in-process on SQLite, in SQL on PostgreSQL.

Event ids are uuid4 strings, as real dispensers send: the unique (dispenser_id, event_id) index then holds
random keys, and the POSTs measured after the prefill pay the index cost a real store has.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from app.config import load_config
from app.store import Event, Store
from bench.common import uuid4_ids

DAYS = 30
BATCH = 1000


def prefill(config_path: Path, total: int, now: float | None = None, seed: int = 1) -> float:
    """Store `total` events spread over the last 30 days and every declared dispenser; return seconds taken."""
    cfg = load_config(config_path)
    store = Store(cfg.database, cfg.dispensers, cfg.timezone)
    ids = [d.id for d in cfg.dispensers]
    now = time.time() if now is None else now
    rng = random.Random(seed)
    start = now - DAYS * 86400
    t0 = time.perf_counter()
    batches = max(1, total // BATCH)
    per_disp = max(1, batches // len(ids))
    span = DAYS * 86400 / per_disp
    for k in range(batches):
        disp = ids[k % len(ids)]
        slot = (k // len(ids)) % per_disp
        lo = start + slot * span
        n = min(BATCH, total - k * BATCH)
        ts = sorted(lo + rng.random() * span for _ in range(n))
        batch = [Event(gel_ul=1500, hands=1, ts=t, event_id=e) for t, e in zip(ts, uuid4_ids(rng, n), strict=True)]
        store.ingest(disp, batch, now=now)
    store.engine.dispose()
    return time.perf_counter() - t0


# On PostgreSQL, Store.ingest (one pg8000 round trip per statement) would take minutes for 1M events: the same rows,
# rollups and running totals are made in SQL instead, in the store's own schema (created by Store()).
PG_FILL = [
    """INSERT INTO events (dispenser_id, event_id, ts, received_at, gel_ul, hands)
       SELECT 'd' || lpad(mod(g, CAST(:n_disp AS bigint))::text, 3, '0'), gen_random_uuid()::text,
              CAST(:start AS double precision)
              + (g / CAST(:n_disp AS bigint) + mod(g, CAST(:n_disp AS bigint)) / CAST(:n_disp AS double precision))
                * CAST(:step AS double precision),
              CAST(:now AS double precision), 1500, 1
       FROM generate_series(0, CAST(:total AS bigint) - 1) AS g""",
    """INSERT INTO rollups (size, dispenser_id, start, gel_ul, hands, events)
       SELECT 'minute', dispenser_id, (floor(ts / 60) * 60)::bigint AS b, sum(gel_ul), sum(hands), count(*)
       FROM events GROUP BY dispenser_id, b
       UNION ALL
       SELECT 'hour', dispenser_id, (floor(ts / 3600) * 3600)::bigint AS b, sum(gel_ul), sum(hands), count(*)
       FROM events GROUP BY dispenser_id, b
       UNION ALL
       SELECT 'day', dispenser_id,
              extract(epoch FROM date_trunc('day', to_timestamp(ts) AT TIME ZONE CAST(:tz AS text))
                                 AT TIME ZONE CAST(:tz AS text))::bigint AS b,
              sum(gel_ul), sum(hands), count(*)
       FROM events GROUP BY dispenser_id, b""",
    """UPDATE dispensers SET gel_ul = t.gel_ul, hands = t.hands, events = t.n, last_event_at = t.newest,
                            last_seen = CAST(:now AS double precision), updated_at = CAST(:now AS double precision)
       FROM (SELECT dispenser_id, sum(gel_ul) AS gel_ul, sum(hands) AS hands, count(*) AS n, max(ts) AS newest
             FROM events GROUP BY dispenser_id) AS t
       WHERE dispensers.id = t.dispenser_id""",
    "ANALYZE",
]


def prefill_postgres(config_path: Path, total: int, now: float | None = None) -> float:
    """Like prefill() on a PostgreSQL store (its config names the time zone), in SQL; return seconds taken."""
    import sqlalchemy as sa

    cfg = load_config(config_path)
    store = Store(cfg.database, cfg.dispensers, cfg.timezone)  # creates and migrates the schema
    now = time.time() if now is None else now
    n_disp = len(cfg.dispensers)
    params = {"n_disp": n_disp, "total": total, "now": now, "start": now - DAYS * 86400,
              "step": DAYS * 86400 / max(1, total // n_disp), "tz": cfg.timezone or "UTC"}
    t0 = time.perf_counter()
    with store.engine.connect() as conn:
        for sql in PG_FILL[:-1]:
            conn.execute(sa.text(sql), params)
        conn.commit()
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(PG_FILL[-1]))
    store.engine.dispose()
    return time.perf_counter() - t0


def main() -> int:
    """CLI: python -m bench.prefill CONFIG N."""
    ap = argparse.ArgumentParser()
    ap.add_argument("config", type=Path)
    ap.add_argument("events", type=int)
    args = ap.parse_args()
    print(f"{prefill(args.config, args.events):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

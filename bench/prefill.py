"""Fill a SQLite store fast, in-process, with N events over 30 days and 100 dispensers."""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import load_config  # noqa: E402
from app.store import Event, Store  # noqa: E402

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
        batch = [Event(gel_ul=1500, hands=1, ts=t, event_id=f"pre-{k}-{i}") for i, t in enumerate(ts)]
        store.ingest(disp, batch, now=now)
    store.engine.dispose()
    return time.perf_counter() - t0


def main() -> int:
    """CLI: prefill.py CONFIG N."""
    ap = argparse.ArgumentParser()
    ap.add_argument("config", type=Path)
    ap.add_argument("events", type=int)
    args = ap.parse_args()
    print(f"{prefill(args.config, args.events):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

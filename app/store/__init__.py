"""The usage store: every event a row, running totals and rollups kept in the same transaction.

`database` holds the engine and time buckets, `writes` the group commit and other writes, `reads` history and
exports, `caches` what the figures re-read cheaply; `core.Store` is the one object the app holds.
"""

from app.store.core import Store
from app.store.writes import Event, Ingested

__all__ = ["Event", "Ingested", "Store"]

"""The engine and what every read and write shares: transactions, time buckets, the dialect's INSERT."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.store.health import WriteHealth, WritesRefused, refusal
from app.store.schema import make_engine


def total(column: sa.ColumnElement) -> sa.ColumnElement:
    """SUM as a 64-bit integer (PostgreSQL would otherwise return NUMERIC, i.e. Decimal)."""
    return sa.cast(sa.func.sum(column), sa.BigInteger)


class Database:
    """One database, SQLite or PostgreSQL, and the site's time zone its local days follow."""

    offline_after_s = 180.0  # a silence longer than this is an outage (the store takes the config's value)

    def __init__(self, url: str, timezone: str | None = None):
        self.engine = make_engine(url)
        self.tz = ZoneInfo(timezone) if timezone else None
        self.write_health = WriteHealth()

    def insert(self, table: sa.Table) -> sa.Insert:
        """An INSERT of this dialect, which knows ON CONFLICT."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    @contextmanager
    def writer(self) -> Iterator[sa.Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite, so writers queue instead of deadlocking)."""
        try:
            with self.engine.connect().execution_options(writer=True) as conn, conn.begin():
                yield conn
        except sa.exc.DBAPIError as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            self.write_health.refused(reason)
            raise WritesRefused(reason) from None  # named for the client; the storage's own words are logged once
        self.write_health.accepted()

    def bucket_start(self, size: str, ts: float) -> int:
        """Start (epoch seconds) of the minute, hour or local day holding `ts`."""
        if size == "minute":
            return int(ts // 60 * 60)
        if size == "hour":
            return int(ts // 3600 * 3600)
        if size != "day":
            raise ValueError(f"no bucket size {size!r}: minute, hour or day")
        local = datetime.fromtimestamp(ts, self.tz)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())

    def bucket_starts(self, size: str, start: float, end: float) -> list[int]:
        """Every bucket start from the one holding `start` up to `end` (local days follow DST)."""
        step = {"minute": 60, "hour": 3600, "day": 26 * 3600}[size]
        starts, t = [], self.bucket_start(size, start)
        while t < end:
            starts.append(t)
            t = self.bucket_start(size, t + step)
        return starts

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

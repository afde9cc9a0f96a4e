"""A cheap test of whether anything was committed to the SQLite file since the last look."""

from __future__ import annotations

import os
import sqlite3
import threading

import sqlalchemy as sa


class DataVersion:
    """SQLite's `PRAGMA data_version`, read on a connection of its own (None where it cannot tell).

    The pragma moves when any *other* connection commits, so this connection never writes: the pool's
    connections, other processes and tools are all "other". PostgreSQL and in-memory databases get None.
    """

    def __init__(self, engine: sa.Engine):
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        self.path = None if not path or path == ":memory:" or path.startswith("file:") else path
        self.lock = threading.Lock()
        self.conn: sqlite3.Connection | None = None
        self.pid = 0  # a forked child opens its own: an SQLite connection must not cross a fork
        self.opened = 0  # values of different connections are not comparable: each opening is a new era

    def read(self) -> tuple[int, int] | None:
        """A value that differs from the last one read whenever another connection committed in between."""
        if self.path is None:
            return None
        with self.lock:
            if self.conn is None or self.pid != os.getpid():
                self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                self.pid, self.opened = os.getpid(), self.opened + 1
            return self.opened, self.conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        """Close the connection (the next read opens a new one)."""
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

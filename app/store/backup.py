"""An online copy of a SQLite database: one read snapshot, however busy the server is."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_file(database_url: str) -> str | None:
    """The file of a SQLite database URL; None for any other database (PostgreSQL: use pg_dump)."""
    url = make_url(database_url)
    return url.database if url.get_backend_name() == "sqlite" and url.database else None


def backup_sqlite(source: str | Path, dest: str | Path) -> Path:
    """Copy the live database at `source` to `dest` (written to a temporary name, then renamed)."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    out = sqlite3.connect(tmp)
    try:
        # In one step: a stepped copy starts over whenever the server commits between two steps, so under steady
        # writes it may never end. In WAL mode (the store's) one long read transaction holds no writer up.
        src.backup(out)
        out.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
        if out.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise RuntimeError("backup failed its integrity check")
    finally:
        out.close()
        src.close()
    os.replace(tmp, dest)
    return dest

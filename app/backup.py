"""`python -m app.backup --config config.toml DEST`: a consistent copy of the SQLite database, online.

SQLite's backup API copies a snapshot within one read transaction while the server keeps writing, so the copy is
always a database that existed at one instant: running totals and events agree. For PostgreSQL use pg_dump.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config import ConfigError, load_config


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


def main(argv: list[str] | None = None) -> int:
    """Back up the database named in config.toml to DEST."""
    parser = argparse.ArgumentParser(prog="python -m app.backup", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("GEL_CONFIG", "config.toml"))
    parser.add_argument("dest", help="file to write, e.g. backups/usage-$(date +%%F).db")
    args = parser.parse_args(argv)
    try:
        url = make_url(load_config(args.config).database)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if url.get_backend_name() != "sqlite" or not url.database:
        print("error: only SQLite databases are backed up this way; use pg_dump for PostgreSQL", file=sys.stderr)
        return 2
    print(backup_sqlite(url.database, args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())

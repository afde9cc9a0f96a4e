"""`python -m app.backup --config config.toml DEST`: a consistent copy of the SQLite database, online.

SQLite's backup API copies a snapshot within one read transaction while the server keeps writing, so the copy is
always a database that existed at one instant: running totals and events agree. For PostgreSQL use pg_dump.
"""

from __future__ import annotations

import argparse
import os
import sys

from app.config import ConfigError, load_config
from app.store.backup import backup_sqlite, sqlite_file


def main(argv: list[str] | None = None) -> int:
    """Back up the database named in config.toml to DEST."""
    parser = argparse.ArgumentParser(prog="python -m app.backup", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("GEL_CONFIG", "config.toml"))
    parser.add_argument("dest", help="file to write, e.g. backups/usage-$(date +%%F).db")
    args = parser.parse_args(argv)
    try:
        path = sqlite_file(load_config(args.config).database)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if path is None:
        print("error: only SQLite databases are backed up this way; use pg_dump for PostgreSQL", file=sys.stderr)
        return 2
    print(backup_sqlite(path, args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())

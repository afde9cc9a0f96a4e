"""`python -m app.compact --config config.toml`: switch an existing SQLite database to incremental auto-vacuum.

Databases created by this release already are. An older one keeps the pages retention frees for reuse (the file
stops growing) but never shrinks until this one VACUUM has run. It can run while the server serves: POSTs wait for
it (SQLite's busy timeout) and dispensers resend what timed out; on a large file choose a quiet hour. It needs
free space of about the database's size. PostgreSQL needs nothing (its autovacuum).
"""

from __future__ import annotations

import argparse
import os
import sys

from app.config import ConfigError, load_config
from app.store.backup import sqlite_file
from app.store.vacuum import INCREMENTAL, auto_vacuum_mode, compact


def main(argv: list[str] | None = None) -> int:
    """Compact the SQLite database named in config.toml once; a no-op when it already is incremental."""
    parser = argparse.ArgumentParser(prog="python -m app.compact", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("GEL_CONFIG", "config.toml"))
    args = parser.parse_args(argv)
    try:
        path = sqlite_file(load_config(args.config).database)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if path is None:
        print("error: only SQLite databases are compacted this way; PostgreSQL's autovacuum does it", file=sys.stderr)
        return 2
    if not os.path.exists(path):
        print(f"error: no database at {path}", file=sys.stderr)
        return 2
    if auto_vacuum_mode(path) == INCREMENTAL:
        print(f"{path}: already incremental auto-vacuum, nothing to do")
        return 0
    try:
        before, after = compact(path)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {before} -> {after} bytes, incremental auto-vacuum on")
    return 0


if __name__ == "__main__":
    sys.exit(main())

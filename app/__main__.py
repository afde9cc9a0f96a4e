"""`python -m app --config config.toml`: serve the API, the dashboard and the live push."""

from __future__ import annotations

import argparse
import os
import sys
from logging import getLogger
from typing import Any

from app.config import ConfigError, load_config
from app.config.tokens import insecure_reason


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: --config, and --host/--port overriding [server]."""
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("GEL_CONFIG", "config.toml"),
                        help="path to config.toml (default: $GEL_CONFIG or ./config.toml)")
    parser.add_argument("--host", help="address to listen on (overrides [server] host)")
    parser.add_argument("--port", type=int, help="port to listen on (overrides [server] port)")
    parser.add_argument("command", nargs="*", metavar="notify-test TARGET | staff-token ID | compact",
                        help="instead of serving: send a test message to one [[server.notify]] target, make a "
                             "person's new token (printed once) and its token_sha256 line for [[server.staff]], or "
                             "give an older SQLite database's free space back (one VACUUM)")
    parser.add_argument("--demo", action="store_true", default=os.environ.get("GEL_DEMO") == "1",
                        help="serve the example tokens of config.toml, on 127.0.0.1 only (also GEL_DEMO=1)")
    return parser.parse_args(argv)


def staff_token(cfg: Any, ident: str) -> int:
    """`staff-token ID`: a new token for that person, printed once, and the line that gives it to the server."""
    import hashlib
    import secrets

    from app.config.fleet import safe_id

    if not safe_id(ident):
        print("error: a person's id is 1-64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    known = any(p.id == ident for p in cfg.staff)
    print(f"token for {ident} (shown once; give it to them, it is not stored anywhere): {token}")
    print(f"\nin config.toml, {'replace the token_sha256 of' if known else 'add'} [[server.staff]] id = \"{ident}\":")
    if not known:
        print(f'[[server.staff]]\nid = "{ident}"\nname = "{ident}"\nrole = "maintenance"   # or hygiene, admin')
    print(f'token_sha256 = "{digest}"')
    print("\nthen `systemctl reload gel-server` (or a restart): the old token stops working.")
    return 0


def audit_command(cfg: Any, action: str, target: str, detail: dict[str, Any]) -> None:
    """A command's action in the audit, by the account that ran it (skipped, said, when the database is not there)."""
    import getpass

    from app.store.auditlog import append_audit, audit_entry
    from app.store.database import Database

    db = Database(cfg.database, cfg.timezone)
    try:
        append_audit(db, [audit_entry(f"command line ({getpass.getuser()})"[:64], "system", action, target,
                                      detail=detail)])
    except Exception as exc:  # a database the server never created: the test itself still happened
        print(f"note: not recorded in the audit ({type(exc).__name__})", file=sys.stderr)
    finally:
        db.engine.dispose()


def compact(cfg: Any) -> int:
    """`compact`: switch an existing SQLite database to incremental auto-vacuum, with one VACUUM.

    Databases created by this release already are. An older one keeps the pages retention frees for reuse (the
    file stops growing) but never shrinks until this has run. It can run while the server serves: POSTs wait for
    it (SQLite's busy timeout) and dispensers resend what timed out; on a large file choose a quiet hour. It needs
    free space of about the database's size. PostgreSQL needs nothing (its autovacuum).
    """
    from app.store.backup import sqlite_file
    from app.store.vacuum import INCREMENTAL, auto_vacuum_mode
    from app.store.vacuum import compact as vacuum

    path = sqlite_file(cfg.database)
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
        before, after = vacuum(path)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {before} -> {after} bytes, incremental auto-vacuum on")
    return 0


def run_command(cfg: Any, command: list[str]) -> int:
    """`notify-test TARGET` (0 when delivered), `staff-token ID` or `compact`."""
    if command == ["compact"]:
        return compact(cfg)
    if len(command) == 2 and command[0] == "staff-token":
        return staff_token(cfg, command[1])
    if len(command) != 2 or command[0] != "notify-test":
        print("error: the commands are: notify-test TARGET, staff-token ID, compact", file=sys.stderr)
        return 2
    from app.notify.senders import NotDelivered
    from app.notify.worker import send_test

    try:
        send_test(cfg, command[1])
        audit_command(cfg, "notify.test", command[1], {"outcome": "delivered"})
    except KeyError:
        known = ", ".join(t.id for t in cfg.targets()) or "none declared"
        print(f"error: no [[server.notify]] target {command[1]!r} (known: {known})", file=sys.stderr)
        return 2
    except NotDelivered as exc:
        print(f"{command[1]}: not delivered: {exc}", file=sys.stderr)
        audit_command(cfg, "notify.test", command[1], {"outcome": f"not delivered: {exc}"})
        return 1
    print(f"{command[1]}: delivered")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Start the server; return an exit code (2 for a configuration that must not run)."""
    args = parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command:
        return run_command(cfg, args.command)
    host = args.host or cfg.host
    port = cfg.port if args.port is None else args.port
    reason = insecure_reason(cfg, host, args.demo)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    from app import serve

    serve.prepare(cfg.async_mode)  # before Flask, SQLAlchemy or redis load
    from app.logs import setup_logging

    setup_logging(cfg.log_level, cfg.secrets())
    shared = [k for k in ("admin_token", "maintenance_token") if getattr(cfg, k)]
    if shared and not args.demo:
        getLogger("app").warning("%s in use: shared by everyone who knows it, named only as a shared token in the "
                                 "audit; give each person their own ([[server.staff]], python -m app staff-token ID)",
                                 " and ".join(shared))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"Dashboard: http://{shown}:{port}/", flush=True)
    serve.serve(cfg, args.config, args.demo, host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())

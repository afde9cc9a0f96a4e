"""Versioned schema migrations, the same on SQLite and PostgreSQL.

Each step moves the schema one version up inside one transaction. A released step is never edited:
a change to app/store/schema.py comes with a new step here, and tests/services/test_migrations.py checks that a fresh
database migrated step by step matches app/store/schema.py exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from app.store.schema import (
    alert_states,
    audit,
    census,
    dispensers,
    meta,
    outages,
    outbox,
    refills,
    required,
    rollups,
    sums,
)

# Release 1 (usage only), frozen as it shipped (built from the column primitives only, never from the tables).
_v1 = sa.MetaData()
sa.Table(
    "dispensers", _v1,
    sa.Column("id", sa.String(64), primary_key=True),
    required("name", sa.String(200)),
    required("capacity_ml", sa.Double),
    *sums("gel_ul", "hands", "events"),
    sa.Column("last_seen", sa.Double),
    sa.Column("last_event_at", sa.Double),
    required("updated_at", sa.Double),
)
sa.Table(
    "events", _v1,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    required("dispenser_id", sa.String(64)),
    sa.Column("event_id", sa.String(64)),
    *(required(name, sa.Double) for name in ("ts", "received_at")),
    *sums("gel_ul"),
    required("hands", sa.Integer),
    sa.UniqueConstraint("dispenser_id", "event_id", name="uq_events_dispenser_event"),
    sa.Index("ix_events_ts", "ts"), sa.Index("ix_events_dispenser_ts", "dispenser_id", "ts"),
)
sa.Table(
    "rollups", _v1,
    sa.Column("size", sa.String(8), primary_key=True),
    sa.Column("dispenser_id", sa.String(64), primary_key=True),
    sa.Column("start", sa.BigInteger, primary_key=True),
    *sums("gel_ul", "hands", "events"),
    sa.Index("ix_rollups_size_start", "size", "start"),
)


# Release 4's table of the change sequence, frozen as it shipped (release 5 adds a column to it).
_v4 = sa.MetaData()
_v4_changes = sa.Table(
    "changes", _v4,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    *sums("seq", "gel_ul", "hands"),
)


def v1_usage(conn: sa.Connection) -> None:
    """Release 1: dispensers with running totals, events, rollups."""
    _v1.create_all(conn)


def v2_operations(conn: sa.Connection) -> None:
    """Release 2: refills, heartbeat fields and the missed-presence counter."""
    for ddl in (
        "ADD COLUMN refill_gel_ul BIGINT NOT NULL DEFAULT 0",
        "ADD COLUMN refilled_at DOUBLE PRECISION",
        "ADD COLUMN missed BIGINT NOT NULL DEFAULT 0",
        "ADD COLUMN backlog INTEGER",
        "ADD COLUMN version VARCHAR(40)",
    ):
        conn.exec_driver_sql(f"ALTER TABLE dispensers {ddl}")
    refills.create(conn)


def v3_covering_index(conn: sa.Connection) -> None:
    """Release 3: history reads a covering index, never the table pages scattered among minute rollups."""
    conn.exec_driver_sql("DROP INDEX ix_rollups_size_start")
    next(ix for ix in rollups.indexes if ix.name == "ix_rollups_cover").create(conn)


def v4_change_sequence(conn: sa.Connection) -> None:
    """Release 4: a change sequence number per write, stamped on the rows it changed, and kept totals."""
    conn.exec_driver_sql("ALTER TABLE dispensers ADD COLUMN seq BIGINT NOT NULL DEFAULT 0")
    next(ix for ix in dispensers.indexes if ix.name == "ix_dispensers_seq").create(conn)
    _v4_changes.create(conn)
    gel_ul, hands = conn.exec_driver_sql("SELECT SUM(gel_ul), SUM(hands) FROM dispensers").one()
    conn.execute(sa.insert(_v4_changes).values(id=1, seq=0, gel_ul=int(gel_ul or 0), hands=int(hands or 0)))


def v5_compliance(conn: sa.Connection) -> None:
    """Release 5: entry counts, test mode (commissioning), outages and the patient census."""
    false = "FALSE" if conn.dialect.name == "postgresql" else "0"
    for table, ddl in (
        ("dispensers", "entries BIGINT NOT NULL DEFAULT 0"),
        ("dispensers", "test_events BIGINT NOT NULL DEFAULT 0"),
        ("dispensers", "mode VARCHAR(8) NOT NULL DEFAULT 'live'"),
        ("events", "entries BIGINT NOT NULL DEFAULT 0"),
        ("events", f"test BOOLEAN NOT NULL DEFAULT {false}"),
        ("rollups", "entries BIGINT NOT NULL DEFAULT 0"),
        ("changes", "entries BIGINT NOT NULL DEFAULT 0"),
    ):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {ddl}")
    outages.create(conn)
    census.create(conn)


def widen_by(conn: sa.Connection, table: sa.Table) -> None:
    """`by` from 16 to 64 characters (a person's id), keeping the rows: SQLite alters no column type, so the table
    is rebuilt there."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f'ALTER TABLE {table.name} ALTER COLUMN "by" TYPE VARCHAR(64)')
        return
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    conn.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {table.name}_before")
    for index in table.indexes:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    table.create(conn)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {table.name}_before")
    conn.exec_driver_sql(f"DROP TABLE {table.name}_before")


def v6_notifications(conn: sa.Connection) -> None:
    """Alerts that leave the screen (the alerts told, the outbox); people: `by` holds a person's id, the audit."""
    alert_states.create(conn)
    outbox.create(conn)
    conn.exec_driver_sql("ALTER TABLE dispensers ADD COLUMN stuck BOOLEAN NOT NULL DEFAULT false")
    widen_by(conn, refills)
    widen_by(conn, census)
    audit.create(conn)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [v1_usage, v2_operations, v3_covering_index,
                                                      v4_change_sequence, v5_compliance, v6_notifications]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sa.Connection) -> int:
    """The schema version recorded in the database, 0 for an empty one."""
    if not sa.inspect(conn).has_table("meta"):
        return 0
    row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else 0


def migrate(engine: sa.Engine, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to `target` (default: this release), one transaction per step."""
    with engine.connect().execution_options(writer=True) as conn:
        while True:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # Two server processes starting at once must not both run a step.
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
                meta.create(conn, checkfirst=True)
                current = schema_version(conn)
                if current > SCHEMA_VERSION:
                    raise RuntimeError(f"database schema v{current} is newer than this release "
                                       f"(v{SCHEMA_VERSION}): upgrade the server")
                if current >= target:
                    return current
                MIGRATIONS[current](conn)
                conn.execute(sa.delete(meta).where(meta.c.key == "schema_version"))
                conn.execute(sa.insert(meta).values(key="schema_version", value=str(current + 1)))

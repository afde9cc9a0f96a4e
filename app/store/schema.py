"""Database tables (SQLAlchemy Core), as of the current schema version, and the engine factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()
# SQLite only aliases the rowid for INTEGER PRIMARY KEY; PostgreSQL wants a 64-bit key.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def required(name: str, kind: Any, **options: Any) -> sa.Column:
    """A NOT NULL column."""
    return sa.Column(name, kind, nullable=False, **options)


def sums(*names: str, **options: Any) -> list[sa.Column]:
    """NOT NULL 64-bit counts or sums; gel is in whole microlitres, so totals are exact, never drifting floats."""
    return [required(name, sa.BigInteger, **options) for name in names]


def per_dispenser_log() -> list[sa.Column]:
    """The first columns of a table that logs what happened to dispensers: a 64-bit row id and the dispenser."""
    return [sa.Column("id", BigId, primary_key=True, autoincrement=True), required("dispenser_id", sa.String(64))]


dispensers = sa.Table(
    "dispensers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    required("name", sa.String(200)),
    required("capacity_ml", sa.Double),
    *sums("gel_ul", "hands", "events", default=0),
    *sums("refill_gel_ul", default=0),  # gel_ul at the last refill
    sa.Column("refilled_at", sa.Double),
    sa.Column("last_seen", sa.Double),  # any contact: events or heartbeat
    sa.Column("last_event_at", sa.Double),  # newest dose timestamp
    *sums("missed", default=0),  # presences that gave no dose
    required("stuck", sa.Boolean, default=False),  # its sensor is held active (the last heartbeat said so)
    *sums("entries", default=0),  # door passages counted by the dispenser's entry sensor (live mode)
    *sums("test_events", default=0),  # events received in test mode: recorded, never counted in a figure
    required("mode", sa.String(8), default="live"),  # "live" or "test" (commissioning)
    sa.Column("backlog", sa.Integer),
    sa.Column("version", sa.String(40)),
    # Every write to a row sets it; what changed is found by `seq` below.
    required("updated_at", sa.Double),
    # The change sequence number of the last write to this row: what changed after N is `seq > N`, via the index.
    *sums("seq", default=0),
    sa.Index("ix_dispensers_seq", "seq"),
)

events = sa.Table(
    "events",
    metadata,
    *per_dispenser_log(),
    sa.Column("event_id", sa.String(64)),
    required("ts", sa.Double),
    required("received_at", sa.Double),
    *sums("gel_ul"),
    required("hands", sa.Integer),
    *sums("entries", default=0),
    required("test", sa.Boolean, default=False),  # sent in test mode: kept apart from every figure
    # NULL event_ids never collide, so posts without an event_id are all counted.
    sa.UniqueConstraint("dispenser_id", "event_id", name="uq_events_dispenser_event"),
    sa.Index("ix_events_ts", "ts"),
    sa.Index("ix_events_dispenser_ts", "dispenser_id", "ts"),
)

# Running totals per minute, hour and local day: history reads these, never the events table.
rollups = sa.Table(
    "rollups",
    metadata,
    sa.Column("size", sa.String(8), primary_key=True),
    sa.Column("dispenser_id", sa.String(64), primary_key=True),
    sa.Column("start", sa.BigInteger, primary_key=True),
    *sums("gel_ul", "hands", "events"),
    *sums("entries", default=0),
    # Covering: history and the 24 h rate read only this index, never the rows scattered among minute rollups.
    sa.Index("ix_rollups_cover", "size", "start", "dispenser_id", "gel_ul", "hands", "events"),
)

refills = sa.Table(
    "refills",
    metadata,
    *per_dispenser_log(),
    required("at", sa.Double),
    *sums("gel_ul_before"),  # used since the previous refill
    required("by", sa.String(64)),  # a person's id, or the shared token's role
    sa.Index("ix_refills_dispenser_at", "dispenser_id", "at"),
)

# One row (id 1): the last change sequence number, shared by every process, and the totals of every dispenser
# row kept in the same write transactions, so that neither costs a read of the whole fleet.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    *sums("seq", "gel_ul", "hands"),
    *sums("entries", default=0),
)

# A dispenser's silences longer than offline_after_s, from last_seen + offline_after_s to the contact that ended
# them, written by that contact: compliance flags the periods they touch instead of reading them as no use.
outages = sa.Table(
    "outages",
    metadata,
    *per_dispenser_log(),
    required("began", sa.Double),
    required("ended", sa.Double),
    # Two processes ending the same silence at once compute the same start: the second insert is a no-op.
    sa.UniqueConstraint("dispenser_id", "began", name="uq_outages_dispenser_began"),
)

# The patients of a group (a ward) on a local day, the denominator of the compliance rate.
census = sa.Table(
    "census",
    metadata,
    sa.Column("group_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # local date, YYYY-MM-DD (sorts as dates do)
    required("patients", sa.Integer),
    required("updated_at", sa.Double),
    required("by", sa.String(64)),  # a person's id, or the shared token's role
)

# The alerts raised and told (notifications): a restart or an upgrade raises nothing twice.
alert_states = sa.Table(
    "alert_states",
    metadata,
    sa.Column("dispenser_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    required("since", sa.Double),
)

# Notifications to send, one row per target and transition, written in the transaction that records it: kept
# until delivered (or given up), so a receiver that is down or a restart loses none. `msg_id` is the same on
# every try (a receiver drops repeats by it).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    required("target", sa.String(64)),
    required("msg_id", sa.String(80)),
    required("type", sa.String(32)),
    sa.Column("dispenser_id", sa.String(64)),
    sa.Column("kind", sa.String(16)),
    required("body", sa.Text),
    required("created_at", sa.Double),
    required("due_at", sa.Double),
    required("attempts", sa.Integer, default=0),
    sa.Column("sent_at", sa.Double),
    sa.Column("gave_up_at", sa.Double),
    sa.Column("last_error", sa.String(300)),
    sa.UniqueConstraint("target", "msg_id", name="uq_outbox_target_msg"),
    sa.Index("ix_outbox_target_open", "target", "sent_at", "gave_up_at", "id"),
)

# Who changed what: append-only, never updated or deleted by the application (retention does not touch it).
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    required("at", sa.Double),
    required("who", sa.String(64)),  # a person's id, "shared admin token", "config reload"...
    required("role", sa.String(16)),
    sa.Column("address", sa.String(64)),
    required("action", sa.String(32)),
    sa.Column("target", sa.String(64)),  # a dispenser, a group or a person
    sa.Column("group_id", sa.String(64)),  # the group it concerns, to read a ward's audit
    required("detail", sa.Text),  # JSON: before and after, dates
    sa.Index("ix_audit_at", "at"),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    required("value", sa.String(200)),
)


def make_engine(url: str) -> sa.Engine:
    """An engine tuned for durable writes: SQLite in WAL mode with full fsync, or PostgreSQL."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions, so writers can BEGIN IMMEDIATE.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # A new file gives freed pages back (retention's reclaim); on an existing one this is a no-op until
            # `python -m app --config FILE compact` runs its one VACUUM. It must come before anything writes the file.
            cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # the WAL is fsynced before COMMIT returns
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get("writer") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)

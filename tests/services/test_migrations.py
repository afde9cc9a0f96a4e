"""The versioned schema: same on both databases, and an upgrade keeps the data."""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa

from app import create_app
from app.config import load_config
from app.store.migrations import SCHEMA_VERSION, migrate, schema_version
from app.store.schema import make_engine, metadata
from devkit.servers import ServerProcess, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
V1_ROWS = (
    "INSERT INTO dispensers (id, name, capacity_ml, gel_ul, hands, events, last_seen, last_event_at, updated_at)"
    " VALUES ('entree', 'Entrée', 300, 4500, 3, 3, 1.7e9, 1.7e9, 1.7e9)",
    "INSERT INTO events (dispenser_id, event_id, ts, received_at, gel_ul, hands)"
    " VALUES ('entree', 'old-1', 1.7e9, 1.7e9, 1500, 1)",
)


def columns(engine: sa.Engine) -> dict[str, set[str]]:
    inspector = sa.inspect(engine)
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}


def column_type(declared: str, engine: sa.Engine) -> str:
    """The type as the database knows it: exact on PostgreSQL, the type affinity on SQLite (its only notion of a
    type, from the rules of its datatype documentation: DOUBLE and DOUBLE PRECISION are both REAL there)."""
    if engine.dialect.name != "sqlite":
        return declared
    upper = declared.upper()
    for affinity, marks in (("INTEGER", ("INT",)), ("TEXT", ("CHAR", "CLOB", "TEXT")), ("BLOB", ("BLOB",)),
                            ("REAL", ("REAL", "FLOA", "DOUB"))):
        if any(mark in upper for mark in marks):
            return affinity
    return "NUMERIC"


def schema(engine: sa.Engine) -> dict[str, dict]:
    """Per table: column types and nullability, primary key, indexes (with uniqueness), unique constraints."""
    inspector = sa.inspect(engine)
    found = {}
    for table in inspector.get_table_names():
        found[table] = {
            "columns": {c["name"]: (column_type(c["type"].compile(engine.dialect), engine), c["nullable"])
                        for c in inspector.get_columns(table)},
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": {i["name"]: (i["column_names"], bool(i["unique"])) for i in inspector.get_indexes(table)},
            "unique": {u["name"]: u["column_names"] for u in inspector.get_unique_constraints(table)},
        }
    return found


def engine_for(database: str, tmp_path, request, name: str = "m") -> sa.Engine:
    """An engine on a new SQLite file or a new PostgreSQL database."""
    if database == "sqlite":
        return make_engine(f"sqlite:///{tmp_path}/{name}.db")
    return make_engine(request.getfixturevalue("pg_url").replace("postgresql://", "postgresql+pg8000://"))


def release_1_database(engine: sa.Engine) -> None:
    """The database as release 1 left it, with a dispenser's totals and one event."""
    migrate(engine, target=1)
    with engine.begin() as conn:
        for sql in V1_ROWS:
            conn.exec_driver_sql(sql)
    with engine.connect() as conn:
        assert schema_version(conn) == 1


@pytest.mark.parametrize("database", DATABASES)
def test_migrating_step_by_step_gives_the_current_schema(database, tmp_path, request):
    engine = engine_for(database, tmp_path, request)
    assert migrate(engine) == SCHEMA_VERSION
    assert migrate(engine) == SCHEMA_VERSION  # a second start changes nothing
    assert columns(engine) == {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    engine.dispose()


@pytest.mark.parametrize("database", DATABASES)
def test_an_upgraded_release_1_database_has_exactly_the_declared_schema(database, tmp_path, request):
    """Types, nullability, keys, indexes and unique constraints: as if app/store/schema.py had created it."""
    upgraded = engine_for(database, tmp_path, request, "upgraded")
    release_1_database(upgraded)
    assert migrate(upgraded) == SCHEMA_VERSION
    if database == "sqlite":
        declared = make_engine(f"sqlite:///{tmp_path}/declared.db")
    else:  # a second database on the same server
        declared = make_engine(request.getfixturevalue("pg_databases")().replace("postgresql://", "postgresql+pg8000://"))
    metadata.create_all(declared)
    got, want = schema(upgraded), schema(declared)
    want["meta"] = got["meta"]  # the migrations' own bookkeeping, created by migrate() alone
    assert got == want
    # What deduplication and history rest on, named so that a change to both sides is still caught.
    assert got["events"]["unique"]["uq_events_dispenser_event"] == ["dispenser_id", "event_id"]
    assert got["rollups"]["indexes"]["ix_rollups_cover"][0] == ["size", "start", "dispenser_id", "gel_ul", "hands",
                                                                  "events"]
    assert "ix_rollups_size_start" not in got["rollups"]["indexes"]
    upgraded.dispose()
    declared.dispose()


@pytest.mark.parametrize("database", DATABASES)
def test_upgrading_a_release_1_database_keeps_its_data(database, tmp_path, write_config, request):
    url = "sqlite:///usage.db" if database == "sqlite" else request.getfixturevalue("pg_url")
    config_path = write_config(database=url)
    engine = engine_for(database, tmp_path, request, "usage")
    release_1_database(engine)
    engine.dispose()

    app = create_app(load_config(config_path))
    client = app.test_client()
    data = client.get("/obtenir_donnees_utilisation?dispenser=entree").get_json()
    assert (data["gel_used"], data["hands_detected"]) == (4.5, 3)
    assert data["dispensers"][0]["level_pct"] == 98.5
    auth = bearer(TOKENS["entree"])
    again = client.post("/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1, "event_id": "old-1"},
                        headers=auth)
    assert again.get_json()["duplicates"] == 1  # the old dedupe memory survived the upgrade
    assert client.post("/api/dispensers/entree/refill", headers=auth).status_code == 200
    with app.extensions["usage_store"].engine.connect() as conn:
        assert schema_version(conn) == SCHEMA_VERSION
    app.extensions["usage_store"].engine.dispose()


def waiting_on_locks(engine: sa.Engine) -> int:
    """Sessions of this database waiting for a lock (a new connection: the activity view is frozen per transaction)."""
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity"
                                    " WHERE datname = current_database() AND wait_event_type = 'Lock'").scalar()


@pytest.mark.slow
def test_two_servers_starting_at_once_upgrade_an_old_postgresql_database_once(pg_url, write_config):
    engine = make_engine(pg_url.replace("postgresql://", "postgresql+pg8000://"))
    release_1_database(engine)
    config = write_config(database=pg_url, async_mode="eventlet")
    servers = [ServerProcess(config) for _ in range(2)]
    failures: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start(timeout=60)
        except BaseException as exc:  # reported below, with the other server's outcome
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    holder = engine.connect()
    try:
        # Hold both at the schema-version read until both are there, so their upgrades truly start together.
        gate = holder.begin()
        holder.exec_driver_sql("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE")
        for t in threads:
            t.start()
        wait_for(lambda: waiting_on_locks(engine) == 2 or failures, 60, message="both servers waiting to upgrade")
        gate.commit()
        for t in threads:
            t.join(90)
        assert not failures, [str(f)[-2000:] for f in failures]
        for server in servers:
            data = requests.get(server.url + "/obtenir_donnees_utilisation?dispenser=entree", timeout=10).json()
            assert (data["gel_used"], data["hands_detected"]) == (4.5, 3)
        with engine.connect() as conn:
            assert schema_version(conn) == SCHEMA_VERSION
            assert conn.exec_driver_sql("SELECT count(*) FROM meta WHERE key = 'schema_version'").scalar() == 1
        assert schema(engine)["dispensers"]["columns"].keys() >= {"refill_gel_ul", "missed", "backlog"}
    finally:
        holder.close()
        for server in servers:
            server.stop()
        engine.dispose()


def test_a_newer_database_is_refused(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/new.db")
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="newer than this release"):
        migrate(engine)

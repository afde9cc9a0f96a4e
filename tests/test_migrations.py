"""The versioned schema: same on both databases, and an upgrade keeps the data."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import load_config
from app.migrations import SCHEMA_VERSION, migrate, schema_version
from app.schema import make_engine, metadata
from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS


def columns(engine: sa.Engine) -> dict[str, set[str]]:
    inspector = sa.inspect(engine)
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_migrating_step_by_step_gives_the_current_schema(database, tmp_path, request):
    url = f"sqlite:///{tmp_path}/m.db" if database == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url.replace("postgresql://", "postgresql+pg8000://"))
    assert migrate(engine) == SCHEMA_VERSION
    assert migrate(engine) == SCHEMA_VERSION  # a second start changes nothing
    assert columns(engine) == {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    engine.dispose()


def test_upgrading_a_release_1_sqlite_file_keeps_its_data(tmp_path, write_config):
    config_path = write_config(database="sqlite:///usage.db")
    engine = make_engine(f"sqlite:///{tmp_path}/usage.db")
    migrate(engine, target=1)  # the file as release 1 left it
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO dispensers (id, name, capacity_ml, gel_ul, hands, events, last_seen, last_event_at,"
            " updated_at) VALUES ('entree', 'Entrée', 300, 4500, 3, 3, 1.7e9, 1.7e9, 1.7e9)")
        conn.exec_driver_sql(
            "INSERT INTO events (dispenser_id, event_id, ts, received_at, gel_ul, hands)"
            " VALUES ('entree', 'old-1', 1.7e9, 1.7e9, 1500, 1)")
    with engine.connect() as conn:
        assert schema_version(conn) == 1
    engine.dispose()

    app = create_app(load_config(config_path))
    client = app.test_client()
    data = client.get("/obtenir_donnees_utilisation?dispenser=entree").get_json()
    assert (data["gel_used"], data["hands_detected"]) == (4.5, 3)
    assert data["dispensers"][0]["level_pct"] == 98.5
    auth = bearer(TOKENS['entree'])
    again = client.post("/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1, "event_id": "old-1"},
                        headers=auth)
    assert again.get_json()["duplicates"] == 1  # the old dedupe memory survived the upgrade
    assert client.post("/api/dispensers/entree/refill", headers=auth).status_code == 200
    with app.extensions["usage_store"].engine.connect() as conn:
        assert schema_version(conn) == SCHEMA_VERSION


def test_a_newer_database_is_refused(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/new.db")
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="newer than this release"):
        migrate(engine)

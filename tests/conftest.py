"""Shared fixtures: an app on a temporary SQLite file, its clients, and a real server process."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serverproc import ServerProcess

from app import create_app, socketio
from app.config import load_config

ON_CI = os.environ.get("CI") == "true"
TOKENS = {"entree": "token-entree-0001", "cafeteria": "token-cafeteria-0002", "b12": "token-b12-0003"}
ADMIN = "token-admin-0000"
CHROMIUM = "/usr/bin/chromium"
POSTGRES = os.environ.get("GEL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("GEL_TEST_REDIS", "redis://127.0.0.1:6379/15")


def config_text(database: str = "sqlite:///usage.db", async_mode: str = "threading", **server) -> str:
    """A config.toml for tests: three dispensers with known tokens, extra [server] keys as given."""
    lines = ["[server]", f'database = "{database}"', f'async_mode = "{async_mode}"', f'admin_token = "{ADMIN}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in server.items()]
    capacities = {"entree": 300, "cafeteria": 300, "b12": 500}
    names = {"entree": "Entrée", "cafeteria": "Cafétéria", "b12": "Salle B12"}
    for ident, token in TOKENS.items():
        lines += ["", "[[server.dispensers]]", f'id = "{ident}"', f'name = "{names[ident]}"',
                  f"capacity_ml = {capacities[ident]}", f'token = "{token}"']
    return "\n".join(lines) + "\n"


def skip_or_fail(reason: str) -> None:
    """Skip with a reason, except under CI where every test is mandatory."""
    if ON_CI:
        pytest.fail(f"mandatory under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a test config.toml in tmp_path and return its path."""

    def write(**server) -> Path:
        path = tmp_path / "config.toml"
        path.write_text(config_text(**server), encoding="utf-8")
        return path

    return write


def _reachable(probe: Callable[[], object]) -> str | None:
    try:
        probe()
        return None
    except Exception as exc:  # any failure means the service is not usable here
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on $GEL_TEST_POSTGRES (default: postgres on 127.0.0.1:5432), dropped after."""
    import sqlalchemy as sa

    admin_url = "postgresql+pg8000://" + POSTGRES.split("://", 1)[1]
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    problem = _reachable(lambda: admin.connect().close())
    if problem:
        admin.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES} (set GEL_TEST_POSTGRES): {problem}")
    name = f"gel_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database on $GEL_TEST_REDIS (default: 127.0.0.1:6379 db 15), emptied before and after."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_timeout=2)
    problem = _reachable(client.ping)
    if problem:
        skip_or_fail(f"Redis not reachable at {REDIS} (set GEL_TEST_REDIS): {problem}")
    client.flushdb()
    yield REDIS
    client.flushdb()
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str:
    """The API suite runs on both databases."""
    if request.param == "sqlite":
        return "sqlite:///usage.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def config_path(write_config: Callable[..., Path], database_url: str) -> Path:
    """The default test config file (threading mode, SQLite in tmp_path or a fresh PostgreSQL database)."""
    return write_config(database=database_url)


@pytest.fixture
def app(config_path: Path):
    """The app on a fresh temporary SQLite database."""
    app = create_app(load_config(config_path))
    app.config["TESTING"] = True
    yield app
    app.extensions["usage_store"].engine.dispose()


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def sio_client(app, client):
    """Flask-SocketIO's test client, connected."""
    sio = socketio.test_client(app, flask_test_client=client)
    yield sio
    if sio.is_connected():
        sio.disconnect()


@pytest.fixture
def post(client) -> Callable:
    """POST usage as a dispenser: post(body, dispenser="entree") -> response."""

    def do(body, dispenser: str = "entree", **kwargs):
        headers = {"Authorization": f"Bearer {TOKENS[dispenser]}"} if dispenser else {}
        headers.update(kwargs.pop("headers", {}))
        return client.post("/mettre_a_jour_donnees", json=body, headers=headers, **kwargs)

    return do


@pytest.fixture
def totals(client) -> Callable[[], tuple[float, int]]:
    """The current (gel_used, hands_detected) totals from the GET route."""

    def read() -> tuple[float, int]:
        data = client.get("/obtenir_donnees_utilisation").get_json()
        return data["gel_used"], data["hands_detected"]

    return read


@pytest.fixture
def server_factory(write_config) -> Iterator[Callable[..., ServerProcess]]:
    """Start real server processes (`python -m app`) on free ports; all stopped at teardown."""
    started: list[ServerProcess] = []

    def start(config: Path | None = None, **server) -> ServerProcess:
        proc = ServerProcess(config or write_config(**server)).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """One real server process in the default (eventlet) mode."""
    return server_factory(async_mode="eventlet")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, or a skip (a failure under CI) when it is missing."""
    if not shutil.which(CHROMIUM):
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM

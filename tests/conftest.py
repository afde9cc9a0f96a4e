"""Shared fixtures: an app on a temporary SQLite file, its clients, real server processes, services, Chromium."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import create_app, socketio
from app.config import load_config
from devkit.chromium import CHROMIUM, CHROMIUM_ARGS
from devkit.servers import ServerProcess, async_mode, xdist_worker
from tests.helpers.auth import bearer
from tests.helpers.browser import Recorded, record, wait_state_is
from tests.helpers.ci import on_ci, skip_or_fail
from tests.helpers.config import POSTGRES, REDIS, TOKENS, config_text, pg_engine, worker_redis
from tests.helpers.workers import REDIS_MODULES, longest_first, module_scheduling, record_durations

# A test using one of these fixtures gets the marker, so `pytest -m "not slow"` and friends need no list to keep.
MARK_BY_FIXTURE = {"server": "slow", "server_factory": "slow", "demo": "slow", "pg_admin": "services",
                   "redis_url": "services", "chromium_path": "browser"}


def pytest_addoption(parser: pytest.Parser) -> None:
    """--write-durations: `make test` records each module's duration for the next run's order."""
    parser.addoption("--write-durations", action="store_true", dest="write_durations",
                     help="write each module's wall time to tests/durations.json at the end (tests/helpers/workers.py)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the durations recorder when asked."""
    record_durations(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark process tests `slow`, PostgreSQL/Redis tests `services`, Chromium tests `browser`."""
    for item in items:
        for fixture in MARK_BY_FIXTURE.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(MARK_BY_FIXTURE[fixture])
        module = item.nodeid.split("::", 1)[0]
        if "redis_url" in getattr(item, "fixturenames", ()) and module not in REDIS_MODULES:
            raise pytest.UsageError(f"{module} uses Redis: add it to REDIS_MODULES in tests/helpers/workers.py")
    longest_first(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `-n N`: whole modules to a worker, the Redis modules to one (tests/helpers/workers.py)."""
    return module_scheduling(config, log) if config.getvalue("dist") in ("load", "loadfile") else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """Say loudly what was skipped, and why: a skipped browser or service test guards nothing."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} TESTS SKIPPED: what they guard was NOT tested", sep="!", red=True,
                             bold=True)
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.line(f"SKIPPED {report.nodeid}: {reason}", red=True)
    if not on_ci():
        terminalreporter.line("(set CI=1 to make these mandatory: they fail instead of skipping)", bold=True)


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


def pg_database(name: str) -> str:
    """The URL of database `name` on $GEL_TEST_POSTGRES, as a config file gives it."""
    return POSTGRES.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Any]:
    """An AUTOCOMMIT engine on $GEL_TEST_POSTGRES (default: 127.0.0.1:5432) for creating and dropping databases."""
    admin = pg_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    problem = _reachable(lambda: admin.connect().close())
    if problem:
        admin.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES} (set GEL_TEST_POSTGRES): {problem}")
    yield admin
    admin.dispose()


@pytest.fixture(scope="session")
def pg_schema_template(pg_admin: Any) -> Iterator[str]:
    """A database of this worker holding the current schema, made by the real migrations once: fresh ones are
    copies of it, so each API test on PostgreSQL does not run every migration again
    (tests/services/test_migrations.py runs them on empty and old databases)."""
    from app.store.migrations import migrate

    name = f"gel_template_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = pg_engine(pg_database(name))
    try:
        migrate(engine)
    finally:
        engine.dispose()  # a template is copied only while nobody is connected to it
    yield name
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_databases(pg_admin: Any) -> Iterator[Callable[..., str]]:
    """new(template=None) -> the URL of a fresh PostgreSQL database (empty, or a copy of `template`); all dropped."""
    names: list[str] = []

    def new(template: str | None = None) -> str:
        names.append(f"gel_test_{uuid.uuid4().hex[:12]}")
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {names[-1]}" + (f" TEMPLATE {template}" if template else ""))
        return pg_database(names[-1])

    yield new
    with pg_admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_databases: Callable[..., str]) -> str:
    """A fresh, empty PostgreSQL database, dropped after."""
    return pg_databases()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database on $GEL_TEST_REDIS (default: 127.0.0.1:6379 db 15; xdist workers 13, 11...), emptied."""
    import redis

    url = worker_redis(REDIS, xdist_worker()[0])
    client = redis.Redis.from_url(url, socket_timeout=2)
    problem = _reachable(client.ping)
    if problem:
        skip_or_fail(f"Redis not reachable at {url} (set GEL_TEST_REDIS): {problem}")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database_url(request) -> str:
    """The API suite runs on both databases: a new SQLite file, or a fresh PostgreSQL database with the schema."""
    if request.param == "sqlite":
        return "sqlite:///usage.db"
    return request.getfixturevalue("pg_databases")(request.getfixturevalue("pg_schema_template"))


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
def delta_client(app, client):
    """Flask-SocketIO's test client, joined to the whole fleet's deltas (as the dashboard page is)."""
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("join", {"group": None}, callback=True)["group"] is None
    sio.get_received()
    yield sio
    if sio.is_connected():
        sio.disconnect()


@pytest.fixture
def post(client) -> Callable:
    """POST usage as a dispenser: post(body, dispenser="entree") -> response."""

    def do(body, dispenser: str = "entree", **kwargs):
        headers = bearer(TOKENS[dispenser]) if dispenser else {}
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
    """Start real server processes (`python -m app`) on free ports; all stopped at teardown. spawn=True: a fresh
    interpreter rather than a fork of the pre-loaded zygote (devkit/zygote.py)."""
    started: list[ServerProcess] = []

    def start(config: Path | None = None, spawn: bool = False, pinned: bool = False, **server) -> ServerProcess:
        """pinned: run the config's async_mode even when the suite runs in another (GEL_TEST_ASYNC_MODE)."""
        mode = (server.get("async_mode") or async_mode(config)) if pinned else None
        proc = ServerProcess(config or write_config(**server), spawn=spawn, async_mode=mode).start()
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


# Not for the session: Playwright's event loop would stay running in this thread, and a later asyncio.run() fail.
@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """One headless Debian Chromium for the whole module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., tuple[Any, Recorded]]]:
    """open_page(url, block_socketio=False, wait_state=None, **context_options) -> (page, Recorded)."""
    contexts: list[Any] = []

    def open_(url: str, block_socketio: bool = False, wait_state: str | None = None,
              **options: Any) -> tuple[Any, Recorded]:
        options.setdefault("viewport", {"width": 1440, "height": 1000})
        options.setdefault("locale", "fr-FR")
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        rec = record(page, block_socketio)
        page.goto(url)
        if wait_state:
            wait_state_is(page, wait_state)
        return page, rec

    yield open_
    for context in contexts:
        context.close()

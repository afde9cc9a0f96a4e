"""Constants of the test setup (tokens, service URLs) and the test config.toml."""

from __future__ import annotations

import os
from typing import Any

TOKENS = {"entree": "token-entree-0001", "cafeteria": "token-cafeteria-0002", "b12": "token-b12-000003"}
ADMIN = "token-admin-0000"
POSTGRES = os.environ.get("GEL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("GEL_TEST_REDIS", "redis://127.0.0.1:6379/15")
NAMES = {"entree": "Entrée", "cafeteria": "Cafétéria", "b12": "Salle B12"}


def worker_redis(url: str, index: int) -> str:
    """`url` with the database of pytest-xdist worker `index`: its own, every other one down (14 is the bench's)."""
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 0) - 2 * index}" if index else url


# The server stacks a test about stacks runs in, each pinned (ServerProcess(async_mode=...)): `make test` the
# design's eventlet and threading, `make test-gevent` / `test-threading` (GEL_TEST_ASYNC_MODE) their own.
SERVER_MODES = ((os.environ["GEL_TEST_ASYNC_MODE"],) if os.environ.get("GEL_TEST_ASYNC_MODE")
                else ("eventlet", "threading"))


def config_text(database: str = "sqlite:///usage.db", async_mode: str = "threading", **server) -> str:
    """A config.toml for tests: three dispensers with known tokens, extra [server] keys as given."""
    lines = ["[server]", f'database = "{database}"', f'async_mode = "{async_mode}"', f'admin_token = "{ADMIN}"']
    # The suite's fixed dates (a March week, 2000-01-01...) lie further back than the 31 days a server takes by
    # default; the tests of that limit set it themselves.
    server = {"max_event_age_days": 100_000, **server}
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in server.items()]
    capacities = {"entree": 300, "cafeteria": 300, "b12": 500}
    for ident, token in TOKENS.items():
        lines += ["", "[[server.dispensers]]", f'id = "{ident}"', f'name = "{NAMES[ident]}"',
                  f"capacity_ml = {capacities[ident]}", f'token = "{token}"']
    return "\n".join(lines) + "\n"


def pg_engine(url: str, **options: Any) -> Any:
    """A SQLAlchemy engine on `url` through pg8000, the driver the server uses (app/config/__init__.py)."""
    import sqlalchemy as sa

    return sa.create_engine("postgresql+pg8000://" + url.split("://", 1)[1], **options)

"""Cluster step of `make bench`: two server processes on PostgreSQL + Redis against one process on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bench import sockbench
from bench.common import cpu_seconds, median, pid_of, wrk
from bench.context import Unavailable, token, write_config
from bench.prefill import prefill_postgres
from devkit.servers import ServerProcess

PG_SERVER = "postgres@127.0.0.1:5432"
PG_ADMIN = f"postgresql+pg8000://{PG_SERVER}/postgres"
REDIS = "redis://127.0.0.1:6379/14"
CONNECTIONS = 8  # in total, split evenly over the processes measured together
TZ = "UTC"  # named, so that the SQL prefill computes the same local days as the server


def _flush_redis() -> None:
    """Empty the bench's Redis database (raises when Redis is unreachable)."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def fresh_databases(n: int, fill: Callable[[str], object] | None = None) -> Iterator[list[str]]:
    """`n` fresh PostgreSQL databases gel_bench_<random> (copies of the first after `fill`), dropped WITH (FORCE).

    Yields their URLs; `fill(url)` fills the first one before the others are made from it as templates.
    """
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5})
    names: list[str] = []
    url = f"postgresql://{PG_SERVER}/" + "{}"
    try:
        try:
            with admin.connect() as conn:
                names.append(f"gel_bench_{uuid.uuid4().hex[:12]}")
                conn.exec_driver_sql(f"CREATE DATABASE {names[0]}")
        except Exception as exc:
            raise Unavailable(f"PostgreSQL not reachable at {PG_SERVER}: {type(exc).__name__}: {exc}") from None
        if fill is not None:
            fill(url.format(names[0]))
        with admin.connect() as conn:
            for _ in range(n - 1):  # a file copy of the filled one: much faster than filling again
                names.append(f"gel_bench_{uuid.uuid4().hex[:12]}")
                conn.exec_driver_sql(f"CREATE DATABASE {names[-1]} TEMPLATE {names[0]}")
        yield [url.format(name) for name in names]
    finally:
        if names:
            with admin.connect() as conn:
                for name in names:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@contextmanager
def dashboards(urls: list[str]) -> Iterator[None]:
    """One idle Socket.IO client (a wall display) on each URL, so every process builds and pushes the figures."""
    ready, stop, errors = threading.Event(), threading.Event(), []

    async def hold() -> None:
        async with aiohttp.ClientSession() as session:
            clients = await sockbench.connect_many(session, urls, len(urls))
            ready.set()
            await asyncio.to_thread(stop.wait)
            await asyncio.gather(*(c.close() for c in clients))

    def loop() -> None:
        try:
            asyncio.run(hold())
        except Exception as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=loop, name="dashboards", daemon=True)
    thread.start()
    try:
        if not ready.wait(60) or errors:
            raise RuntimeError(f"dashboards did not connect: {errors[:1]}")
        yield
    finally:
        stop.set()
        thread.join(30)


def _cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def rate(servers: list[ServerProcess], tag: str, batch: int, duration: int) -> dict:
    """Requests/s summed over one concurrent wrk per server (CONNECTIONS split evenly); CPU used meanwhile."""
    args = [(f"{tag}{k}{time.time_ns()}",) + (("100",) if batch > 1 else ()) for k in range(len(servers))]
    machine0, own0, t0 = _cpu(), [cpu_seconds(pid_of(s)) for s in servers], time.monotonic()
    with ThreadPoolExecutor(len(servers)) as pool:
        runs = list(pool.map(lambda s, a: wrk(s.url + "/mettre_a_jour_donnees", "post.lua", a, duration,
                                              connections=CONNECTIONS // len(servers)), servers, args))
    busy, total = (after - before for before, after in zip(machine0, _cpu(), strict=True))
    own = [100 * (cpu_seconds(pid_of(s)) - c) / (time.monotonic() - t0) for s, c in zip(servers, own0, strict=True)]
    return {"rps": sum(r["rps"] for r in runs), "per_process": runs, "server_cpu_pct": own,
            "machine_busy_pct": 100 * busy / max(1, total)}


def interleaved(setups: dict[str, list[ServerProcess]], tag: str, batch: int, reps: int, duration: int) -> dict:
    """`reps` interleaved rounds of rate() per setup; the median of the summed rates is kept."""
    runs: dict[str, list] = {k: [] for k in setups}
    for rep in range(reps):
        for name, servers in setups.items():
            runs[name].append(rate(servers, f"{tag}{rep}{name}", batch, duration))
    return {k: {"rps": median([r["rps"] for r in v]), "runs": v} for k, v in runs.items()}


def push(a: ServerProcess, b: ServerProcess, clients: int) -> dict[str, Any]:
    """POST to A: 1 client on B (p99 of 200), then the last of `clients` spread over A and B (median of 11)."""
    return sockbench.push_figures(b.url, [a.url, b.url], token(0), clients, post_url=a.url)


def measure(run_dir: Path, reps: int, wrk_s: int, clients: int, events: int, say: Any = print) -> dict[str, Any]:
    """The whole step on fresh databases holding `events` events; every sample, plus the step's wall time."""
    t0 = time.monotonic()
    try:
        _flush_redis()
    except Exception as exc:
        raise Unavailable(f"Redis not reachable at {REDIS}: {type(exc).__name__}: {exc}") from None
    servers: list[ServerProcess] = []
    try:
        fill_s: list[float] = []

        def fill(url: str) -> None:
            fill_s.append(prefill_postgres(write_config(run_dir / "cluster-fill", "", database=url, timezone=TZ),
                                           events))
            say(f"cluster: {events} events stored in PostgreSQL in {fill_s[0]:.0f}s")

        with fresh_databases(2, fill if events else None) as (pair_db, one_db):
            try:
                cfg_pair = write_config(run_dir / "cluster-pair", "", database=pair_db, message_queue=REDIS,
                                        timezone=TZ)
                cfg_one = write_config(run_dir / "cluster-one", "", database=one_db, timezone=TZ)
                for cfg in (cfg_pair, cfg_pair, cfg_one):
                    servers.append(ServerProcess(cfg).start(timeout=60))
                a, b, one = servers
                setups = {"pair": [a, b], "one": [one]}
                out: dict[str, Any] = {"store_events": events, "prefill_s": fill_s[0] if fill_s else 0.0,
                                       "dashboards": "1 per process"}
                with dashboards([a.url, b.url, one.url]):
                    out["post"] = interleaved(setups, "c", 1, reps, wrk_s)
                    say("cluster post " + str({k: v["rps"] for k, v in out["post"].items()}))
                    batch = interleaved(setups, "cb", 100, reps, wrk_s)
                out["batch100"] = {k: {"events_per_s": v["rps"] * 100, **v} for k, v in batch.items()}
                say("cluster batch " + str({k: v["events_per_s"] for k, v in out["batch100"].items()}))
                one.stop()
                out["push"] = push(a, b, clients)
                say(f"cluster push p99 {out['push']['one_client_p99_ms']:.1f} ms, "
                    f"fan-out median {out['push']['fanout_last_median_ms']:.0f} ms")
            finally:
                for srv in servers:
                    srv.stop()
    finally:
        _flush_redis()
    out["step_s"] = time.monotonic() - t0
    return out

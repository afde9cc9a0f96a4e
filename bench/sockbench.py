"""Light asyncio Socket.IO clients (raw Engine.IO v4 over aiohttp websockets) for push latency and fan-out."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid

import aiohttp

EVENT_PREFIX = '42["donnees_utilisation"'


class Client:
    """One websocket speaking just enough Engine.IO/Socket.IO: connect, answer pings, time each push."""

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pushes = 0
        self.last_at = 0.0
        self.changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def connect(self, session: aiohttp.ClientSession, base: str) -> None:
        """Open the websocket, join the default namespace and wait for the payload sent on connect."""
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await session.ws_connect(url, max_msg_size=0, autoping=False)
        first = await self.ws.receive_str()
        assert first.startswith("0"), first
        await self.ws.send_str("40")
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._wait_pushes(1), 30)

    async def _wait_pushes(self, n: int) -> None:
        while self.pushes < n:
            self.changed.clear()
            await self.changed.wait()

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = msg.data
            if data.startswith(EVENT_PREFIX):
                self.last_at = time.perf_counter()
                self.pushes += 1
                self.changed.set()
            elif data == "2":
                await self.ws.send_str("3")

    async def close(self) -> None:
        """Close the websocket."""
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()


_ids = itertools.count()


async def post_one(session: aiohttp.ClientSession, base: str, token: str) -> None:
    """One single-event POST like a dispenser's."""
    body = {"gel_used": 1.5, "hands_detected": 1, "event_id": f"sock-{uuid.uuid4().hex[:12]}-{next(_ids)}"}
    async with session.post(base + "/mettre_a_jour_donnees", json=body,
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()


async def connect_many(session: aiohttp.ClientSession, base: str | list[str], n: int,
                       parallel: int = 50) -> list[Client]:
    """Connect n clients, `parallel` at a time, spread in turn over the base URL(s)."""
    bases = [base] if isinstance(base, str) else base
    clients = [Client() for _ in range(n)]
    for i in range(0, n, parallel):
        await asyncio.gather(*(c.connect(session, bases[(i + j) % len(bases)])
                               for j, c in enumerate(clients[i:i + parallel])))
    return clients


async def push_latency(session: aiohttp.ClientSession, base: str, token: str, clients: list[Client],
                       posts: int, timeout: float = 30.0) -> list[float]:
    """For each POST: seconds from sending it until the LAST client has the push that follows it."""
    out = []
    for _ in range(posts):
        targets = [c.pushes + 1 for c in clients]
        t0 = time.perf_counter()
        await post_one(session, base, token)
        await asyncio.wait_for(asyncio.gather(*(c._wait_pushes(t) for c, t in zip(clients, targets, strict=True))),
                               timeout)
        out.append(max(c.last_at for c in clients) - t0)
    return out


async def run(base: str | list[str], token: str, clients: int, posts: int, rss_probe=None,  # noqa: ANN001
              post_url: str | None = None) -> dict:
    """Connect `clients` to base(s), time `posts` pushes (POSTed to post_url, else the first base), probe RSS."""
    post_url = post_url or (base if isinstance(base, str) else base[0])
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        cs = await connect_many(session, base, clients)
        connect_s = time.perf_counter() - t0
        rss = rss_probe() if rss_probe else None
        lat = await push_latency(session, post_url, token, cs, posts)
        await asyncio.gather(*(c.close() for c in cs))
    return {"latencies_s": lat, "connect_s": connect_s, "rss_mb": rss}


def measure(base: str | list[str], token: str, clients: int, posts: int, rss_probe=None,  # noqa: ANN001
            post_url: str | None = None) -> dict:
    """Synchronous wrapper around run()."""
    return asyncio.run(run(base, token, clients, posts, rss_probe, post_url))


def push_figures(one_base: str, many_bases: str | list[str], token: str, clients: int,
                 post_url: str | None = None, rss_probe=None) -> dict:  # noqa: ANN001
    """1 client on `one_base` (p50/p99 of 200 POSTs), then the last of `clients` on `many_bases` (median of 11)."""
    one = sorted(measure(one_base, token, 1, 200, post_url=post_url)["latencies_s"])
    many = measure(many_bases, token, clients, 11, rss_probe, post_url)
    out = {
        "one_client_p50_ms": statistics.median(one) * 1000,
        "one_client_p99_ms": one[int(len(one) * 0.99) - 1] * 1000,
        "one_client_samples_ms": [x * 1000 for x in one],
        "fanout_last_median_ms": statistics.median(many["latencies_s"]) * 1000,
        "fanout_samples_ms": [x * 1000 for x in many["latencies_s"]],
        "connect_s": many["connect_s"],
    }
    if rss_probe is not None:
        out["rss_mb"] = many["rss_mb"]  # while the `clients` sockets are connected
    return out

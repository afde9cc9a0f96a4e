"""Light asyncio Socket.IO clients (raw Engine.IO v4 over aiohttp websockets) for push latency and fan-out."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable

import aiohttp

from bench.context import Fault

# The full figures (sent on connect, and to clients that never join) and the delta of each use (to those that do).
FIGURES_EVENTS = ('42["donnees_utilisation"', '42["donnees_delta"')
JOIN = '42["join",{"group":null}]'  # as the dashboard page does: the whole fleet's deltas (ignored by old servers)
Probe = Callable[[], float]
# The payload's total comes before the per-dispenser entries (which have their own), so the first match is it.
TOTAL_HANDS = re.compile(r'"hands_detected":(\d+)')


class Client:
    """One websocket speaking just enough Engine.IO/Socket.IO: connect, answer pings, time each push."""

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pushes = 0
        self.hands = -1  # the total of hands the last push showed
        self.seen: list[tuple[float, int, str]] = []  # (perf_counter, total shown, event) of each push since mark()
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
        await self.ws.send_str(JOIN)

    async def _wait_pushes(self, n: int) -> None:
        while self.pushes < n:
            self.changed.clear()
            await self.changed.wait()

    def mark(self) -> None:
        """Forget the pushes received so far."""
        self.seen = []

    async def showing(self, hands: int) -> tuple[float, str]:
        """perf_counter() and event of the first push since mark() showing `hands` hands or more."""
        while True:
            reached = next(((t, event) for t, shown, event in self.seen if shown >= hands), None)
            if reached is not None:
                return reached
            self.changed.clear()
            await self.changed.wait()

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = msg.data
            if data.startswith(FIGURES_EVENTS):
                now = time.perf_counter()
                found = TOTAL_HANDS.search(data, 0, 400)
                self.hands = int(found.group(1)) if found else -1
                self.seen.append((now, self.hands, data[4:data.index('"', 4)]))
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


async def post_one(session: aiohttp.ClientSession, base: str, token: str) -> int:
    """One single-event POST like a dispenser's; the total of hands its answer reports."""
    body = {"gel_used": 1.5, "hands_detected": 1, "event_id": str(uuid.uuid4())}
    async with session.post(base + "/mettre_a_jour_donnees", json=body,
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        if resp.status != 200:
            raise Fault(f"POST answered {resp.status}: {(await resp.text())[:200]}")
        return int((await resp.json())["hands_detected"])


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
                       posts: int, timeout: float = 30.0, events: Counter | None = None,
                       gap_s: float = 0.0) -> list[float]:
    """For each POST: seconds from sending it until the LAST client has a push showing the POST's total.

    `events` counts which event brought the new total to that last client; `gap_s` paces the POSTs (uses a
    moment apart, as a ward's dispensers see them, rather than back to back).
    """
    out = []
    for _ in range(posts):
        for c in clients:
            c.mark()
        t0 = time.perf_counter()
        total = await post_one(session, base, token)
        try:
            seen = await asyncio.wait_for(asyncio.gather(*(c.showing(total) for c in clients)), timeout)
        except TimeoutError:
            shown = sorted({c.hands for c in clients})[:5]
            raise Fault(f"no push showed {total} hands within {timeout} s (clients show {shown})") from None
        last_at, event = max(seen)
        out.append(last_at - t0)
        if events is not None:
            events[event] += 1
        if gap_s:
            await asyncio.sleep(gap_s)
    return out


async def _probe(base: str, token: str) -> str:
    async with aiohttp.ClientSession() as session:
        client = (await connect_many(session, base, 1))[0]
        events: Counter = Counter()
        await push_latency(session, base, token, [client], 3, events=events)
        await client.close()
    return events.most_common(1)[0][0]


def pushed_event(base: str, token: str) -> str:
    """Which event brings a dashboard (connected, joined) the figures after a POST: full figures or a delta."""
    return asyncio.run(_probe(base, token))


async def run(base: str | list[str], token: str, clients: int, posts: int, rss_probe: Probe | None = None,
              post_url: str | None = None) -> dict:
    """Connect `clients` to base(s), time `posts` pushes (POSTed to post_url, else the first base), probe RSS."""
    post_url = post_url or (base if isinstance(base, str) else base[0])
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        cs = await connect_many(session, base, clients)
        connect_s = time.perf_counter() - t0
        rss = rss_probe() if rss_probe else None
        events: Counter = Counter()
        lat = await push_latency(session, post_url, token, cs, posts, events=events)
        await asyncio.gather(*(c.close() for c in cs))
    return {"latencies_s": lat, "connect_s": connect_s, "rss_mb": rss, "events": dict(events)}


def measure(base: str | list[str], token: str, clients: int, posts: int, rss_probe: Probe | None = None,
            post_url: str | None = None) -> dict:
    """Synchronous wrapper around run()."""
    return asyncio.run(run(base, token, clients, posts, rss_probe, post_url))


async def _paced(base: str, token: str, posts: int, gap_s: float) -> list[float]:
    async with aiohttp.ClientSession() as session:
        client = (await connect_many(session, base, 1))[0]
        await push_latency(session, base, token, [client], 5)  # connections and caches warm
        found = await push_latency(session, base, token, [client], posts, gap_s=gap_s)
        await client.close()
    return found


def paced_push(base: str, token: str, posts: int = 100, gap_s: float = 0.02) -> list[float]:
    """One joined dashboard, `posts` uses `gap_s` apart: the seconds from each POST sent to its push seen."""
    return asyncio.run(_paced(base, token, posts, gap_s))


def tail(samples_s: list[float]) -> dict:
    """p50, p99 (nearest rank) and the worst of latencies in seconds, in ms."""
    found = sorted(samples_s)
    return {"p50_ms": statistics.median(found) * 1000, "p99_ms": found[-(-len(found) * 99 // 100) - 1] * 1000,
            "max_ms": found[-1] * 1000, "samples": len(found)}


def push_figures(one_base: str, many_bases: str | list[str], token: str, clients: int,
                 post_url: str | None = None, rss_probe: Probe | None = None) -> dict:
    """1 client on `one_base` (p50/p99 of 200 POSTs), then the last of `clients` on `many_bases` (median of 11)."""
    first = measure(one_base, token, 1, 200, post_url=post_url)
    one = sorted(first["latencies_s"])
    many = measure(many_bases, token, clients, 11, rss_probe, post_url)
    out = {
        "events": {"one_client": first["events"], "fanout": many["events"]},
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

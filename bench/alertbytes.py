"""The `alertbytes` step: what one use costs a dashboard joined to the whole fleet, with part of it offline.

A light stand-in for the fleet step's page figure (issue 26, point 1): one server of 1,000 dispensers in groups
(tools/fleet_layout.py), plus USERS more that send the uses. Dispensers never heard from are offline: first all
1,000 are (only the USERS have reported), then 100 (900 report once), then none. For each, a raw Socket.IO client
joined as the page joins (`{"group": null}`) counts every byte of every frame it receives while USES single-event
uses arrive 0.2 s apart, until it shows the last one; bytes per use = those bytes / USES. Before them, WARMUP
uses one at a time catch the client up from the figures it got on connect, and the client waits for a quiet
SETTLE_S (the watchdog's check after the fleet changed has passed); what all that cost is recorded apart.
The page's 5 s polls are not counted (a joined page only polls when a push is missing).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import requests

from bench.common import now_iso, use_each
from bench.context import ADMIN, RUN, Fault, token
from bench.fleet import _big_reservoirs
from bench.sockbench import FIGURES_EVENTS, JOIN, TOTAL_HANDS
from devkit.servers import ServerProcess
from tools.fleet_layout import write_fleet

if TYPE_CHECKING:
    from bench.context import Bench

FLEET = int(os.environ.get("BENCH_ALERTBYTES_FLEET", "1000"))
USERS = 10  # the dispensers the uses come from: online throughout
USES = 50
WARMUP = 5
SETTLE_S = 6.0  # past the default check_interval_s of 5 s
OFFLINE = (FLEET, FLEET // 10, 0)  # 1,000, 100 and 0 at the size
GAP_S = 0.2


class Joined:
    """A raw Socket.IO client joined to the whole fleet, counting the bytes of every frame it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.bytes, self.frames, self.shown = ws, 0, 0, -1
        self.sizes: list[tuple[int, str]] = []  # (bytes, start) of each frame counted
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            if msg.data == "2":
                await self.ws.send_str("3")
                continue
            self.bytes, self.frames = self.bytes + len(msg.data.encode()), self.frames + 1
            self.sizes.append((len(msg.data.encode()), msg.data[:60]))
            found = TOTAL_HANDS.search(msg.data, 0, 400) if msg.data.startswith(FIGURES_EVENTS) else None
            self.shown = int(found.group(1)) if found else self.shown

    async def quiet(self, seconds: float) -> None:
        """Wait until no frame has come for `seconds` (the watchdog's next check has passed), within 60 s."""
        deadline, last, since = time.monotonic() + 60, self.frames, time.monotonic()
        while time.monotonic() - since < seconds:
            if time.monotonic() > deadline:
                raise Fault(f"the joined client never went {seconds} s without a frame")
            await asyncio.sleep(0.2)
            if self.frames != last:
                last, since = self.frames, time.monotonic()

    async def showing(self, total: int) -> None:
        """Wait until a push shows `total` hands."""
        deadline = time.monotonic() + 30
        while self.shown < total:
            if time.monotonic() > deadline:
                raise Fault(f"the joined client shows {self.shown} hands, {total} were recorded")
            await asyncio.sleep(0.02)


async def _post(session: aiohttp.ClientSession, base: str, tok: str) -> int:
    async with session.post(base + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                            headers={"Authorization": f"Bearer {tok}"}) as resp:
        if resp.status != 200:
            raise Fault(f"POST answered {resp.status}")
        return int((await resp.json())["hands_detected"])


async def _measure(base: str, tokens: list[str]) -> tuple[int, int]:
    """(bytes received, frames) by one joined client over uses 2..USES, until it shows the last one."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
                                      max_msg_size=0, autoping=False)
        await ws.receive_str()
        await ws.send_str("40")
        client = Joined(ws)
        await client.showing(0)  # the full figures sent on connect
        await ws.send_str(JOIN)
        # The first deltas catch the client up from the figures it got on connect (a cached copy, up to a second
        # old): a cost per connection, recorded apart. WARMUP uses, one at a time, each waited for.
        for i in range(WARMUP):
            await client.showing(await _post(session, base, tokens[i % USERS]))
        # Dispensers just heard from move the alert list: the watchdog's next check (check_interval_s, 5 s) sends
        # those changes once. The figure is the steady state after it: uses while k stay offline.
        await client.quiet(SETTLE_S)
        warmup = (client.bytes, max(size for size, _ in client.sizes))
        client.bytes, client.frames, client.sizes = 0, 0, []
        total = 0
        for i in range(USES):
            total = await _post(session, base, tokens[i % USERS])
            await asyncio.sleep(GAP_S)
        await client.showing(total)
        client.task.cancel()
        await ws.close()
        return {"bytes_per_use": client.bytes / USES, "frames": client.frames,
                "largest_frame": max(size for size, _ in client.sizes), "warmup_bytes": warmup[0],
                "warmup_largest_frame": warmup[1]}


def _offline(url: str) -> int:
    alerts = requests.get(url + "/obtenir_donnees_utilisation", timeout=30).json()["alerts"]
    return sum(1 for a in alerts if a["kind"] == "offline")


def step(b: Bench) -> None:
    """Bytes per use received by a joined dashboard with 1,000, 100 and 0 dispensers offline."""
    server = {"database": "sqlite:///usage.db", "async_mode": "eventlet", "admin_token": ADMIN, "log_level": "INFO",
              "offline_after_s": 3600}
    config, by_id = write_fleet(RUN / "alertbytes", FLEET + USERS, server, token_of=token)
    _big_reservoirs(config.with_name("dispensers.csv"))
    tokens = list(by_id.values())
    users, rest = tokens[:USERS], tokens[USERS:]
    srv = ServerProcess(config)
    b.running["alertbytes"] = srv
    srv.start(60)
    fig: dict[str, Any] = {"date": now_iso(), "dispensers": FLEET, "users": USERS, "uses": USES, "gap_s": GAP_S,
                           "offline": {}}
    use_each(srv.url, users)
    heard = 0
    for offline in OFFLINE:
        use_each(srv.url, rest[heard:FLEET - offline])
        heard = FLEET - offline
        if _offline(srv.url) != offline:
            raise Fault(f"{_offline(srv.url)} dispensers offline, {offline} expected")
        fig["offline"][str(offline)] = asyncio.run(_measure(srv.url, users))
    srv.stop()
    b.running.pop("alertbytes")
    b.fig["alertbytes"] = fig

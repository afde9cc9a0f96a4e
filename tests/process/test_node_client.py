"""The realtime contract held by a client nobody here wrote: Node's socket.io-client 4.8 (tests/node/conformance.mjs).

It connects by long-polling and upgrades to a websocket, keeps its state from the GET and applies every delta by
`base`/`seq` as README says, for the whole fleet and for a group. After a burst of uses, refills and an offline flip,
after a dropped frame and after a 2.5 s disconnection, its state equals a fresh GET field by field.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from devkit.servers import ROOT, ServerProcess, reaped, wait_for
from tests.helpers.auth import bearer
from tests.helpers.ci import skip_or_fail
from tests.helpers.config import ADMIN
from tools.fleet_layout import write_fleet

NODE_DIR = ROOT / "tests" / "node"
GROUP = "bat-a"  # building A: wards 1 and 3 (d0001-d0010, d0021-d0030); building B holds d0011-d0020
IN_GROUP, OUTSIDE = ["d0001", "d0004", "d0022", "d0030"], ["d0011", "d0017"]


class NodeClient:
    """`node conformance.mjs URL GROUP`: commands on stdin, one JSON event per line on stdout."""

    def __init__(self, url: str):
        self.proc = subprocess.Popen(["node", str(NODE_DIR / "conformance.mjs"), url, GROUP], cwd=NODE_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.events: list[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def of(self, event: str, client: str | None = None) -> list[dict]:
        """The events of one kind so far (of one client if given)."""
        return [e for e in list(self.events) if e["event"] == event and client in (None, e.get("client"))]

    def wait(self, event: str, count: int = 1, client: str | None = None, timeout: float = 30) -> list[dict]:
        """Wait until `count` events of this kind arrived (per client when `client` is None: both of them)."""

        def enough() -> bool:
            assert self.proc.poll() is None or self.of(event, client), f"node exited: {self.proc.stderr.read()}"
            if client is None:
                return all(len(self.of(event, c)) >= count for c in ("fleet", "group"))
            return len(self.of(event, client)) >= count

        wait_for(enough, timeout, message=f"{count} {event} from node ({self.events[-3:]})")
        return self.of(event, client)

    def command(self, command: str, timeout: float = 60) -> None:
        """Send a command and wait until node has carried it out."""
        done = len([e for e in self.of("done") if e["command"] == command])
        self.send(command)
        wait_for(lambda: len([e for e in self.of("done") if e["command"] == command]) > done, timeout,
                 message=f"node to carry out {command} ({self.events[-3:]})")

    def check(self) -> dict[str, dict]:
        """Both clients compared with a fresh GET: the last `checked` event of each."""
        self.command("check")
        return {c: self.of("checked", c)[-1] for c in ("fleet", "group")}


@pytest.fixture
def node_modules() -> Path:
    """The pinned client installed by `npm ci --prefix tests/node` (.ci/run); a failure under CI when missing."""
    if not shutil.which("node"):
        skip_or_fail("no node (Node 20 and npm: apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        skip_or_fail("tests/node/node_modules missing: run `npm ci --ignore-scripts --prefix tests/node`")
    return NODE_DIR / "node_modules"


@pytest.fixture
def fleet(tmp_path: Path, server_factory) -> tuple[ServerProcess, dict[str, str]]:
    """30 dispensers in groups on a real eventlet server; silent for 2 s is offline, checked 5 times a second."""
    config, tokens = write_fleet(tmp_path, 30, {"database": "sqlite:///usage.db", "async_mode": "eventlet",
                                                "admin_token": ADMIN, "offline_after_s": 2, "check_interval_s": 0.2})
    return server_factory(config=config), tokens


@pytest.fixture
def node(node_modules: Path, fleet) -> Iterator[NodeClient]:
    client = NodeClient(fleet[0].url)
    with reaped(client.proc):
        yield client
        client.send("quit")
        client.proc.wait(10)
    assert client.of("error") == [], client.of("error")


def use(url: str, tokens: dict[str, str], dispenser: str) -> None:
    resp = requests.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.5, "hands_detected": 1},
                         headers=bearer(tokens[dispenser]), timeout=10)
    assert resp.status_code == 200, resp.text


def refill(url: str, dispenser: str) -> None:
    resp = requests.post(f"{url}/api/dispensers/{dispenser}/refill", headers=bearer(ADMIN), timeout=10)
    assert resp.status_code == 200, resp.text


def get(url: str, **params: str) -> dict:
    return requests.get(url + "/obtenir_donnees_utilisation", params=params, timeout=10).json()


def all_offline(url: str, ids: list[str]) -> bool:
    entries = {d["id"]: d for d in get(url)["dispensers"]}
    return not any(entries[i]["online"] for i in ids)


def assert_equal_to_the_get(checked: dict[str, dict]) -> None:
    for name, result in checked.items():
        assert result["ok"], (name, result)
        assert result["differences"] == [] and result["transport"] == "websocket", (name, result)
    assert checked["fleet"]["dispensers"] == 30 and checked["group"]["dispensers"] == 20


def test_node_reference_client_keeps_the_figures_of_the_fleet_and_of_a_group(node, fleet):
    server, tokens = fleet
    upgraded = node.wait("upgraded")
    joined = node.wait("joined")
    for event in upgraded:  # connected by long-polling, then upgraded to a websocket
        assert event["transports"] == ["polling", "websocket"] and event["transport"] == "websocket", event
    assert sorted(str(e["ack"]["group"]) for e in joined) == sorted(["None", GROUP])

    # A burst of uses inside and outside the group, refills, then every used dispenser going offline.
    burst = (IN_GROUP + OUTSIDE) * 6
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda d: use(server.url, tokens, d), burst))
    refill(server.url, "d0004")
    refill(server.url, "d0017")
    wait_for(lambda: all_offline(server.url, IN_GROUP + OUTSIDE), 30, message="the offline flip")
    use(server.url, tokens, "d0011")  # the last changes (its use, its flip) outside the group
    wait_for(lambda: all_offline(server.url, ["d0011"]), 30, message="d0011 offline again")
    # The GET shows the flip as soon as the time passes; its push follows the watchdog's next check.
    checked = wait_for(lambda: (c := node.check())["fleet"]["held"] == c["fleet"]["fresh_seq"] and c, 15,
                       message="the last push received")
    assert_equal_to_the_get(checked)
    fleet_seq, group_seq = checked["fleet"]["held"], checked["group"]["held"]
    assert fleet_seq == checked["fleet"]["fresh_seq"]
    # The group's deltas skip other groups' change numbers: it holds a seq behind the fleet's, and that is no gap.
    assert group_seq < fleet_seq and checked["group"]["counts"]["refetches"] == 0
    assert checked["fleet"]["counts"]["refetches"] == 0
    assert checked["fleet"]["counts"]["applied"] >= 3 and checked["group"]["counts"]["applied"] >= 3
    before = {c: checked[c]["counts"] for c in checked}

    # A frame lost on the way: the next delta shows the gap, the client re-reads the GET.
    node.command("drop")
    use(server.url, tokens, "d0001")  # in the group: both clients get a delta, and drop it
    node.wait("dropped")
    use(server.url, tokens, "d0002")
    checked = node.check()
    assert_equal_to_the_get(checked)
    for name in ("fleet", "group"):
        assert checked[name]["counts"]["dropped"] == 1
        assert checked[name]["counts"]["refetches"] == before[name]["refetches"] + 1, checked[name]

    # The transport cut: 2.5 s without a connection, changes meanwhile, then the client joins again with `since`:
    # the acknowledgement comes after the delta of what it missed, so it is current at once, with no change after
    # the reconnection to bring it up to date.
    before = {c: checked[c]["counts"] for c in checked}
    node.command("kill")
    node.wait("disconnected")
    use(server.url, tokens, "d0003")
    use(server.url, tokens, "d0015")
    refill(server.url, "d0022")
    missed_up_to = get(server.url)["seq"]
    rejoined = [node.wait("joined", 2, client=c)[1] for c in ("fleet", "group")]
    for event in rejoined:
        assert event["since"] < missed_up_to <= event["ack"]["seq"] == event["seq"], event
    node.wait("upgraded", 2)
    checked = node.check()
    assert_equal_to_the_get(checked)
    for name in ("fleet", "group"):
        counts = checked[name]["counts"]
        assert counts["join_deltas"] > before[name]["join_deltas"], checked[name]  # what it missed
        assert counts["refetches"] == before[name]["refetches"], checked[name]

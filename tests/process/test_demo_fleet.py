"""`tools/demo.py --fleet N`: N dispensers in groups, simulated in the demo's own process."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from devkit.servers import free_port, reaped, stop_process, wait_for
from tests.helpers.demo import start_demo

pytestmark = pytest.mark.slow


def test_the_fleet_demo_serves_n_dispensers_in_groups_from_one_simulator(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f"[server]\nport = {free_port()}\n", encoding="utf-8")
    proc, out, _ = start_demo(config, tmp_path, "--fleet", "40", "--mean-interval", "4")
    with reaped(proc):
        url = wait_for(lambda: next((x for x in out if x.startswith("http://")), None), 60, message="URL line")
        route = url + "obtenir_donnees_utilisation"
        # Issue 23 item 4: the history is in before the URL is shown, so the first sight has no offline alert.
        start = requests.get(route, timeout=10).json()
        assert all(d["online"] for d in start["dispensers"]), [d["id"] for d in start["dispensers"] if not d["online"]]
        assert not [a for a in start["alerts"] if a["kind"] == "offline"]
        assert "sending the history of 40 dispensers..." in out
        first = wait_for(lambda: (data := requests.get(route, timeout=10).json())["hands_detected"] and data, 30,
                         message="the fleet's first uses")
        assert len(first["dispensers"]) == 40 and first["dispensers"][0]["path"][0] == "CHU Nord"
        assert [g["id"] for g in first["groups"]][:3] == ["site", "bat-a", "bat-b"]
        assert any(len(d["path"]) == 4 for d in first["dispensers"])  # site, building, floor, ward
        wait_for(lambda: requests.get(route, timeout=10).json()["hands_detected"] > first["hands_detected"], 30,
                 message="live uses after the history")
        assert "40 simulated dispensers; Ctrl-C stops" in out
        # One process simulates them all: the demo's only child is the server.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        generated = tmp_path / "instance" / "fleet-40"
        assert (generated / "dispensers.csv").read_text().startswith("id,name,group,capacity_ml,token_sha256\n")
        assert (generated / "demo.log").exists() and not (generated / "instance").exists()
        assert stop_process(proc, signal.SIGINT, 30) == 0

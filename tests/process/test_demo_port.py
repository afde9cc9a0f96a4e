"""`make demo` when its port is taken: it says so, serves on a free port and prints that URL."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import pytest
import requests

from devkit.servers import ROOT, reaped, stop_process, wait_for
from tests.helpers.demo import start_demo


@pytest.mark.slow
def test_the_demo_falls_back_to_a_free_port_when_its_own_is_taken(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as taken:  # somebody else listens on the configured port
        port = taken.getsockname()[1]
        shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
        assert "port = 5000" in shipped
        config = tmp_path / "config.toml"
        config.write_text(shipped.replace("port = 5000", f"port = {port}"), encoding="utf-8")
        proc, out, err = start_demo(config, tmp_path, "--mean-interval", "0.5")
        with reaped(proc):
            url = wait_for(lambda: next((x for x in out if x.startswith("http://")), None) or proc.poll() is not None,
                           60, message="URL line")
            assert isinstance(url, str), f"the demo exited with {proc.returncode}: {err}"
            used = int(re.fullmatch(r"http://127\.0\.0\.1:(\d+)/", url).group(1))
            assert used != port
            assert f"port {port} is taken, using {used}" in err
            assert requests.get(url + "healthz", timeout=10).status_code == 200
            wait_for(lambda: requests.get(url + "obtenir_donnees_utilisation", timeout=10).json()["hands_detected"],
                     30, message="the simulated dispensers deliver to the fallback port")
            assert stop_process(proc, signal.SIGINT, 30) == 0

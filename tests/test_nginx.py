"""README "Scaling out": two server processes behind the shipped nginx configuration."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests
import socketio as sio_lib

from tests.helpers.auth import bearer
from tests.helpers.ci import skip_or_fail
from tests.helpers.config import TOKENS
from tests.helpers.servers import ROOT, free_port, wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]  # nginx, PostgreSQL and Redis, real processes


@pytest.fixture
def nginx(tmp_path):
    """Run nginx in the foreground with the shipped site file, on given upstream ports."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if shutil.which("/usr/sbin/nginx") else None)
    if binary is None:
        skip_or_fail("nginx is not installed (apt-get install nginx-light)")
    procs = []

    def start(upstream_ports: list[int]) -> str:
        site = (ROOT / "deploy" / "nginx-gel.conf").read_text()
        port = free_port()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        site = site.replace("    server 127.0.0.1:5001;\n    server 127.0.0.1:5002;\n",
                            "".join(f"    server 127.0.0.1:{p};\n" for p in upstream_ports))
        conf = tmp_path / "nginx.conf"
        conf.write_text(f"""
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    {site}
}}
""")
        procs.append(subprocess.Popen([binary, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.PIPE))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(url + "/healthz", timeout=1).status_code == 200, 10, message="nginx")
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_two_processes_behind_nginx(nginx, server_factory, write_config, pg_url, redis_url):
    config = write_config(database=pg_url, async_mode="eventlet", message_queue=redis_url)
    servers = [server_factory(config), server_factory(config)]
    front = nginx([s.port for s in servers])
    received: list[dict] = []
    client = sio_lib.Client(reconnection=False)
    client.on("donnees_utilisation", received.append)
    client.connect(front)  # long-polling first, then the websocket upgrade: both through nginx
    try:
        wait_for(lambda: received and client.transport() == "websocket", 10, message="websocket through nginx")
        sent = time.monotonic()
        for s in servers:  # a POST to either process reaches the client through nginx
            r = requests.post(s.url + "/mettre_a_jour_donnees", json={"gel_used": 1, "hands_detected": 1},
                              headers=bearer(TOKENS['entree']), timeout=10)
            assert r.status_code == 200
        wait_for(lambda: received[-1]["hands_detected"] == 2, 5, interval=0.005, message="pushes")
        assert time.monotonic() - sent < 1.0
        r = requests.post(front + "/mettre_a_jour_donnees", json={"hands_detected": 1},
                          headers=bearer(TOKENS['b12']), timeout=10)
        assert r.json()["hands_detected"] == 3
        assert requests.get(front + "/obtenir_donnees_utilisation", timeout=10).json()["hands_detected"] == 3
    finally:
        client.disconnect()

"""README "Scaling out" and "Security": server processes behind the shipped nginx configuration, over TLS."""

from __future__ import annotations

import shutil
import subprocess
from typing import NamedTuple

import pytest
import requests
import socketio as sio_lib

from devkit.servers import ROOT, free_port, wait_for
from tests.helpers.auth import bearer
from tests.helpers.ci import skip_or_fail
from tests.helpers.config import TOKENS

pytestmark = [pytest.mark.services, pytest.mark.slow]  # nginx, PostgreSQL and Redis, real processes


class Front(NamedTuple):
    """nginx as the LAN sees it: HTTPS (certificate from the test's own CA) and the plain-HTTP port."""

    url: str
    http_url: str
    ca: str


@pytest.fixture
def nginx(tmp_path):
    """Run nginx in the foreground with the shipped site file, on given upstream ports, with a throwaway CA."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if shutil.which("/usr/sbin/nginx") else None)
    if binary is None:
        skip_or_fail("nginx is not installed (apt-get install nginx-light)")
    if shutil.which("openssl") is None:
        skip_or_fail("openssl is not installed (apt-get install openssl)")
    tls = tmp_path / "tls"  # made by the shipped script, as docs/deployment.md says to
    subprocess.run([ROOT / "deploy" / "lan-ca.sh", "ca", tls], check=True, capture_output=True)
    subprocess.run([ROOT / "deploy" / "lan-ca.sh", "server", tls, "127.0.0.1"], check=True, capture_output=True)
    procs = []

    def start(upstream_ports: list[int]) -> Front:
        site = (ROOT / "deploy" / "nginx-gel.conf").read_text()
        port, tls_port = free_port(), free_port()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;")
        site = site.replace("/etc/nginx/gel-tls/server.", f"{tls}/127.0.0.1.")
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
        front = Front(f"https://127.0.0.1:{tls_port}", f"http://127.0.0.1:{port}", str(tls / "ca.crt"))
        wait_for(lambda: requests.get(front.url + "/healthz", timeout=1, verify=front.ca).status_code == 200, 10,
                 message="nginx")
        return front

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_two_processes_behind_nginx(nginx, server_factory, write_config, pg_url, redis_url):
    config = write_config(database=pg_url, async_mode="eventlet", message_queue=redis_url)
    servers = [server_factory(config), server_factory(config)]
    front = nginx([s.port for s in servers])
    received: list[dict] = []
    tls_session = requests.Session()
    tls_session.verify = front.ca  # python-engineio hands the CA to the websocket too
    tls_session.trust_env = False  # or REQUESTS_CA_BUNDLE in the environment would replace the CA
    client = sio_lib.Client(reconnection=False, http_session=tls_session)
    client.on("donnees_utilisation", received.append)
    client.connect(front.url)  # long-polling first, then the websocket upgrade: both through nginx, over TLS
    try:
        wait_for(lambda: received and client.transport() == "websocket", 10, message="websocket through nginx")
        for s in servers:  # a POST to either process reaches the client through nginx
            r = requests.post(s.url + "/mettre_a_jour_donnees", json={"gel_used": 1, "hands_detected": 1},
                              headers=bearer(TOKENS['entree']), timeout=10)
            assert r.status_code == 200
        # Latency is `make bench`'s to measure; 15 s only keeps a lost push from hanging on a loaded machine.
        wait_for(lambda: received[-1]["hands_detected"] == 2, 15, interval=0.005, message="pushes")
        r = tls_session.post(front.url + "/mettre_a_jour_donnees", json={"hands_detected": 1},
                             headers=bearer(TOKENS['b12']), timeout=10)
        assert r.json()["hands_detected"] == 3
        assert tls_session.get(front.url + "/obtenir_donnees_utilisation", timeout=10).json()["hands_detected"] == 3
    finally:
        client.disconnect()


def test_plain_http_only_redirects_to_https(nginx, server_factory, write_config):
    """Port 80 proxies nothing: browsers are sent to HTTPS, a POST over cleartext is never recorded."""
    server = server_factory(write_config())
    front = nginx([server.port])
    r = requests.get(front.http_url + "/?kiosk=1", allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"] == "https://127.0.0.1/?kiosk=1"  # port 443 in production
    r = requests.post(front.http_url + "/mettre_a_jour_donnees", json={"hands_detected": 1},
                      headers=bearer(TOKENS['entree']), allow_redirects=False, timeout=10)
    assert r.status_code == 301
    r = requests.get(front.url + "/obtenir_donnees_utilisation", verify=front.ca, timeout=10)
    assert r.json()["hands_detected"] == 0
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    with pytest.raises(requests.exceptions.SSLError):  # a client without the CA refuses the certificate
        requests.get(front.url + "/healthz", timeout=10)

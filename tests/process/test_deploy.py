"""The shipped deployment: systemd units (verify, exposure score), hashed lock files, the LAN CA, Redis over TLS."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import redis
import requests
import socketio as sio_lib
from packaging.requirements import Requirement

from devkit.servers import ROOT, free_port, wait_for
from tests.helpers.auth import bearer
from tests.helpers.ci import skip_or_fail
from tests.helpers.config import TOKENS

DEPLOY = ROOT / "deploy"
REQUIREMENTS = ROOT / "requirements"
VENV_PYTHON = "/opt/gel-dispenser/.venv/bin/python"
# The targets for `systemd-analyze security --offline=true` (0 = locked down, 10 = fully exposed).
MAX_EXPOSURE = {"gel-server.service": 3.0, "gel-dispenser.service": 5.0}


def systemd_analyze() -> str:
    """The systemd-analyze binary (package systemd), or skip (fail under CI)."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        skip_or_fail("systemd-analyze is not installed (apt-get install systemd)")
    return binary


def directives(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, values in order of appearance."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_unit_passes_systemd_analyze_verify(name, tmp_path):
    # verify refuses an ExecStart whose binary is missing, and the venv's python exists only on an installed Pi.
    # So the copy checked here runs this interpreter instead: every other line is the shipped one, checked for
    # real. verify exits 0 even on an unknown key or a bad value (it only warns), so any output is a failure.
    text = (DEPLOY / name).read_text()
    assert f"ExecStart={VENV_PYTHON} " in text
    (tmp_path / name).write_text(text.replace(VENV_PYTHON, sys.executable))
    done = subprocess.run([systemd_analyze(), "verify", str(tmp_path / name)], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_unit_exposure_score(name):
    done = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager", str(DEPLOY / name)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE[name], done.stdout


def test_units_run_as_separate_users_and_only_the_dispenser_reaches_gpio():
    server = directives(DEPLOY / "gel-server.service")
    dispenser = directives(DEPLOY / "gel-dispenser.service")
    assert server["User"] != dispenser["User"] and "root" not in server["User"] + dispenser["User"]
    assert "SupplementaryGroups" not in server and server["PrivateDevices"] == ["yes"]
    assert dispenser["SupplementaryGroups"] == ["gpio"] and dispenser["DevicePolicy"] == ["closed"]
    assert "char-gpiochip rw" in dispenser["DeviceAllow"]
    assert "ProcSubset" not in dispenser  # would hide /proc/cpuinfo and /proc/device-tree, where gpiozero finds the Pi
    assert server["StateDirectory"] != dispenser["StateDirectory"]  # neither reads the other's data
    for unit in (server, dispenser):
        assert unit["CapabilityBoundingSet"] == [""] and unit["UMask"] == ["0077"]
        assert unit["SystemCallFilter"][0] == "@system-service"
    assert int(server["LimitNOFILE"][0]) >= 4096  # 1,000 idle connections and then some


def lock_pins(name: str) -> dict[str, str]:
    """{package: version} of a lock file, after checking that every pin carries a hash."""
    text = (REQUIREMENTS / name).read_text()
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2].strip())  # one entry per pinned package
    pins = {}
    for entry in entries:
        assert "--hash=sha256:" in entry, f"{name}: no hash for {entry.splitlines()[0]}"
        package, version = re.match(r"([a-z0-9._-]+)==([^\s;\\]+)", entry).groups()
        pins[package] = version
    return pins


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("extra", ["server", "dispenser", "dev"])
def test_lock_file_is_hashed_and_satisfies_pyproject(extra):
    # A dependency changed in pyproject.toml without `make lock` would install what the lock says, not it.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = lock_pins(f"{extra}.lock")
    wanted, seen = [extra], set()
    while wanted:  # dev pulls in gel-dispenser[server,dispenser]
        for line in project["optional-dependencies"][wanted.pop()]:
            requirement = Requirement(line)
            if normalized(requirement.name) == normalized(project["name"]):
                wanted += [e for e in requirement.extras if e not in seen]
                seen.update(requirement.extras)
                continue
            version = pins.get(normalized(requirement.name))
            assert version is not None, f"{extra}.lock lacks {requirement.name}"
            assert requirement.specifier.contains(version, prereleases=True), f"{extra}.lock: {line} != {version}"


def test_server_and_dispenser_locks_install_together():
    # The Pi that runs both installs both locks into one venv: a package in both must have one version.
    server, dispenser = lock_pins("server.lock"), lock_pins("dispenser.lock")
    assert {p: server[p] for p in server.keys() & dispenser.keys()} == \
           {p: dispenser[p] for p in server.keys() & dispenser.keys()}
    major, minor = (int(n) for n in server["python-socketio"].split(".")[:2])
    assert (major, minor) >= (5, 14)  # queue messages as JSON, never unpickled


@pytest.fixture(scope="module")
def lan_ca(tmp_path_factory) -> Path:
    """A CA and a certificate for 127.0.0.1 and gel.hopital.lan, made by the shipped script."""
    if shutil.which("openssl") is None:
        skip_or_fail("openssl is not installed (apt-get install openssl)")
    tls = tmp_path_factory.mktemp("tls")
    subprocess.run([DEPLOY / "lan-ca.sh", "ca", tls], check=True, capture_output=True)
    subprocess.run([DEPLOY / "lan-ca.sh", "server", tls, "127.0.0.1", "gel.hopital.lan"], check=True,
                   capture_output=True)
    return tls


def test_lan_ca_certificate_verifies_strictly_for_its_names_only(lan_ca):
    # -x509_strict: what Python 3.13's default context demands (key identifiers, critical CA constraints).
    def verify(*check: str) -> int:
        return subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver", *check, "-CAfile",
                               lan_ca / "ca.crt", lan_ca / "127.0.0.1.crt"], capture_output=True).returncode

    assert verify("-verify_ip", "127.0.0.1") == 0
    assert verify("-verify_hostname", "gel.hopital.lan") == 0
    assert verify("-verify_ip", "10.1.2.3") != 0
    assert (lan_ca / "ca.key").stat().st_mode & 0o077 == 0  # the private keys are for their owner alone
    assert (lan_ca / "127.0.0.1.key").stat().st_mode & 0o077 == 0
    again = subprocess.run([DEPLOY / "lan-ca.sh", "ca", lan_ca], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr  # never overwrites the site's CA


@pytest.fixture
def redis_tls(lan_ca, tmp_path):
    """A redis-server of our own that only speaks TLS and wants a password, as docs/deployment.md sets it up."""
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("redis-server is not installed (apt-get install redis-server)")
    port, password = free_port(), "queue-password-0123456789"
    proc = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
         "--tls-cert-file", str(lan_ca / "127.0.0.1.crt"), "--tls-key-file", str(lan_ca / "127.0.0.1.key"),
         "--tls-ca-cert-file", str(lan_ca / "ca.crt"), "--tls-auth-clients", "no", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"rediss://:{password}@127.0.0.1:{port}/0?ssl_ca_certs={lan_ca / 'ca.crt'}"
    try:
        wait_for(lambda: redis.Redis.from_url(url).ping(), 10, message="redis over TLS")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


class _MakesDirectoryWhenUnpickled:
    """A queue message that would run code in any server that unpickles what it reads from Redis."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def post_and_wait(server, received: list[dict], hands: int) -> None:
    """POST one hand and wait for the push that says `hands` in total."""
    r = requests.post(server.url + "/mettre_a_jour_donnees", json={"hands_detected": 1},
                      headers=bearer(TOKENS["entree"]), timeout=10)
    assert r.status_code == 200
    wait_for(lambda: received and received[-1]["hands_detected"] == hands, 10, message="push through Redis")


@pytest.mark.services  # a redis-server of its own and a real server process
@pytest.mark.slow
def test_message_queue_over_tls_with_a_password(redis_tls, server_factory, tmp_path):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(redis_tls.replace(":queue-password", ":wrong")).ping()
    server = server_factory(message_queue=redis_tls)
    received: list[dict] = []
    client = sio_lib.Client(reconnection=False)
    client.on("donnees_utilisation", received.append)
    client.connect(server.url, transports=["websocket"])
    try:  # every emit travels through the queue, even with one process: the push proves TLS and password work
        post_and_wait(server, received, 1)
        # python-socketio before 5.14 unpickled queue messages: whoever could write to Redis ran code in the server.
        marker = tmp_path / "unpickled"
        queue = redis.Redis.from_url(redis_tls)
        assert queue.publish("flask-socketio", pickle.dumps(_MakesDirectoryWhenUnpickled(marker))) >= 1
        post_and_wait(server, received, 2)  # the queue is read in order: the pickle has been read by now
        assert not marker.exists()
    finally:
        client.disconnect()


def test_lan_ca_keeps_a_non_ascii_name_as_written(tmp_path):
    # The docs' example name: without `openssl req -utf8` it was stored double-encoded ("HÃ´pital Nord â€“ …").
    if shutil.which("openssl") is None:
        skip_or_fail("openssl is not installed (apt-get install openssl)")
    name = "Hôpital Nord – gel dispensers CA"
    subprocess.run([DEPLOY / "lan-ca.sh", "ca", tmp_path / "ca", name], check=True, capture_output=True)
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253,-esc_msb",
                              "-in", tmp_path / "ca" / "ca.crt"], check=True, capture_output=True).stdout
    assert subject.decode("utf-8").strip() == f"subject=CN={name}"

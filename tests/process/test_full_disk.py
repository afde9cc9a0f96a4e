"""A full disk is named and answered 503 with Retry-After, logged once per streak, seen by /healthz; nothing lost."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devkit.servers import ServerProcess
from tests.helpers.auth import bearer
from tests.helpers.ci import skip_or_fail
from tests.helpers.config import TOKENS, config_text

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 1 MB file system of its own (tmpfs, mounted as root: CI and these machines run as root)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        skip_or_fail("mounting a small file system needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs here: {mounted.stderr.decode()[:200]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_503_named_once_and_healthz_says_so(tmp_path, small_disk):
    config = tmp_path / "config.toml"
    config.write_text(config_text(database=f"sqlite:///{small_disk}/usage.db", async_mode="eventlet",
                                  dispenser_events_per_min=0), encoding="utf-8")
    server = ServerProcess(config).start()
    try:
        url, headers = server.url, bearer(TOKENS["entree"])
        accepted, refused = 0, []
        for n in range(400):  # about 100 bytes an event: the disk is full well before 400 batches of 200
            batch = [{"gel_used": 1.0, "hands_detected": 1, "event_id": f"full-{n}-{i}"} for i in range(200)]
            resp = requests.post(url + "/mettre_a_jour_donnees", json=batch, headers=headers, timeout=10)
            if resp.status_code == 200:
                accepted += resp.json()["accepted"]
            else:
                refused.append(resp)
                if len(refused) == 5:
                    break
        assert len(refused) == 5, "the disk never filled"
        for resp in refused:
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "60", resp.text
            assert resp.json() == {"error": "the database refuses writes: disk full"}
        health = requests.get(url + "/healthz", timeout=10)
        assert health.status_code == 503 and "disk full" in health.json()["error"]
        log = server.log()
        assert log.count("the database refuses writes: disk full") == 1  # once per streak, not per request
        assert "Traceback" not in log and " 500 " not in log
        # Room again: the next write goes through, the streak ends, and nothing acknowledged was lost.
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        resp = requests.post(url + "/mettre_a_jour_donnees", json={"gel_used": 1.0, "hands_detected": 1},
                             headers=headers, timeout=10)
        assert resp.status_code == 200
        assert requests.get(url + "/healthz", timeout=10).status_code == 200
        totals = requests.get(url + "/obtenir_donnees_utilisation", timeout=10).json()
        assert totals["hands_detected"] == accepted + 1
        assert "takes writes again" in server.log()
    finally:
        server.stop()

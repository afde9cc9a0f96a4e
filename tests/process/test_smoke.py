"""Smoke: one use posted then read back, in the test client and on a real server process."""

from tests.helpers.auth import bearer
from tests.helpers.config import TOKENS


def test_post_then_get(post, totals):
    assert post({"gel_used": 1.5, "hands_detected": 1}).status_code == 200
    assert totals() == (1.5, 1)


def test_real_server_process(server):
    import requests

    r = requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 2, "hands_detected": 1},
                      headers=bearer(TOKENS['entree']), timeout=5)
    assert r.status_code == 200, r.text
    assert requests.get(server.url + "/obtenir_donnees_utilisation", timeout=5).json()["hands_detected"] == 1

"""Reload without restart: SIGHUP re-reads config.toml; dispensers, groups and tokens change at once."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest
import requests
import socketio

from app import create_app
from app.config import load_config
from app.live.reload import reload_config
from devkit.servers import wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, SERVER_MODES, TOKENS, config_text

ROUTE = "/obtenir_donnees_utilisation"
NEW_TOKEN = "token-rotated-entree-0009"
EXTRA = '\n[[server.dispensers]]\nid = "hall"\nname = "Hall"\ncapacity_ml = 400\ntoken = "token-hall-000000000004"\n'


def rewritten(path: Path, text: str) -> Path:
    """Write `text` over the config file, as an admin editing it would."""
    path.write_text(text, encoding="utf-8")
    return path


def edited(database: str) -> str:
    """The test config with: b12 removed, cafeteria renamed, entree's token rotated, a new dispenser "hall"."""
    text = config_text(database)
    text = text.replace('name = "Cafétéria"', 'name = "Cafétéria (rez-de-chaussée)"')
    text = text.replace(TOKENS["entree"], NEW_TOKEN)
    start = text.index('[[server.dispensers]]\nid = "b12"')
    return text[:start].rstrip() + "\n" + EXTRA


@pytest.fixture
def served(tmp_path: Path):
    """An app on its own config file and database, with the file's path."""
    path = tmp_path / "config.toml"
    database = f"sqlite:///{tmp_path / 'usage.db'}"
    rewritten(path, config_text(database))
    app = create_app(load_config(path))
    yield app, path, database
    app.extensions["usage_store"].engine.dispose()


def test_a_reload_adds_renames_removes_and_rotates_at_once(served) -> None:
    app, path, database = served
    client = app.test_client()
    assert client.post("/mettre_a_jour_donnees", json={"gel_used": 2.0, "hands_detected": 1},
                       headers=bearer(TOKENS["b12"])).status_code == 200
    found = reload_config(app, rewritten(path, edited(database)))
    assert found is not None
    assert (found.added, found.removed, found.changed, found.tokens_rotated) == (["hall"], ["b12"], ["cafeteria"],
                                                                                  ["entree"])
    figures = client.get(ROUTE).get_json()
    names = {d["id"]: d["name"] for d in figures["dispensers"]}
    assert names == {"entree": "Entrée", "cafeteria": "Cafétéria (rez-de-chaussée)", "hall": "Hall"}
    # The old token is refused, the new one and the new dispenser's record uses; b12's token is nobody's now.
    use = {"gel_used": 1.5, "hands_detected": 1}
    assert client.post("/mettre_a_jour_donnees", json=use, headers=bearer(TOKENS["entree"])).status_code == 401
    assert client.post("/mettre_a_jour_donnees", json=use, headers=bearer(NEW_TOKEN)).status_code == 200
    assert client.post("/mettre_a_jour_donnees", json=use,
                       headers=bearer("token-hall-000000000004")).status_code == 200
    assert client.post("/mettre_a_jour_donnees", json=use, headers=bearer(TOKENS["b12"])).status_code == 401
    # b12 left the live view, not the history: its dose is still in the totals and in the export.
    assert client.get(ROUTE).get_json()["gel_used"] == 5.0
    export = client.get("/api/export.csv?dispenser=b12")
    assert export.status_code == 404  # no longer a declared dispenser to ask for by id...
    assert "b12" in client.get("/api/export.csv").get_data(as_text=True)  # ...but its events are kept


def test_a_config_that_fails_its_checks_changes_nothing(served, caplog) -> None:
    app, path, database = served
    before = app.extensions["usage_config"]
    with caplog.at_level(logging.ERROR, logger="app.live.reload"):
        assert reload_config(app, rewritten(path, config_text(database) + "\nnot toml [[[\n")) is None
    assert app.extensions["usage_config"] is before
    lines = [r for r in caplog.records if r.name == "app.live.reload"]
    assert len(lines) == 1 and "the running config stays in force" in lines[0].getMessage()
    client = app.test_client()
    assert client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=bearer(TOKENS["entree"])).status_code \
        == 200


def test_settings_that_need_a_restart_are_named_and_kept(served, caplog) -> None:
    app, path, database = served
    port = app.extensions["usage_config"].port
    text = config_text(database, low_level_pct=40.0).replace("[server]\n", "[server]\nport = 5999\n", 1)
    with caplog.at_level(logging.WARNING, logger="app.live.reload"):
        found = reload_config(app, rewritten(path, text))
    assert found is not None and found.restart_needed == ["port"]
    cfg = app.extensions["usage_config"]
    assert (cfg.port, cfg.low_level_pct) == (port, 40.0)  # the rest is applied
    assert any("port changed but take effect only after a restart" in r.getMessage() for r in caplog.records)


def test_new_tokens_are_redacted_from_the_logs_after_a_reload(served, caplog) -> None:
    app, path, database = served
    from app.logs import setup_logging

    handler = setup_logging("INFO", app.extensions["usage_config"].secrets())
    try:
        assert reload_config(app, rewritten(path, edited(database))) is not None
        record = logging.LogRecord("t", logging.INFO, __file__, 1, f"token {NEW_TOKEN} and {TOKENS['entree']}",
                                   None, None)
        for found in handler.filters:
            found.filter(record)
        assert NEW_TOKEN not in record.getMessage() and TOKENS["entree"] not in record.getMessage()
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_sighup_reloads_a_running_server_and_its_dashboards_refetch(server_factory, write_config, tmp_path,
                                                                    mode: str) -> None:
    path = write_config(async_mode=mode, check_interval_s=3600)
    server = server_factory(config=path, pinned=True)
    deltas: list[dict] = []
    client = socketio.Client(reconnection=False)
    client.on("donnees_delta", deltas.append)
    client.connect(server.url, transports=["websocket"], wait_timeout=10)
    try:
        ack = client.call("join", {"group": None}, timeout=10)
        database = load_config(path).database
        text = edited(database).replace('async_mode = "threading"', f'async_mode = "{mode}"')
        rewritten(path, text.replace("[server]\n", "[server]\ncheck_interval_s = 3600\n", 1))
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in server.log(), 10, message="the reload's log line")
        # The joined dashboard got a gap (base past its seq): it fetches the GET again, and sees the new fleet.
        wait_for(lambda: deltas, 10, message="a delta after the reload")
        assert deltas[-1]["base"] > ack["seq"] and client.connected
        ids = {d["id"] for d in requests.get(server.url + ROUTE, timeout=10).json()["dispensers"]}
        assert ids == {"entree", "cafeteria", "hall"}
        assert requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 1.0},
                             headers=bearer(NEW_TOKEN), timeout=10).status_code == 200
        assert requests.post(server.url + "/api/dispensers/entree/refill", headers=bearer(ADMIN),
                             timeout=10).status_code == 200
        assert NEW_TOKEN not in server.log()
        # A broken file: refused with one line, the server goes on with what it had.
        rewritten(path, "[server\n")
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload refused" in server.log(), 10, message="the refusal's log line")
        assert requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 1.0},
                             headers=bearer(NEW_TOKEN), timeout=10).status_code == 200
    finally:
        client.disconnect()


def test_an_open_dashboard_shows_the_reloaded_fleet_without_a_reload_of_its_own(server_factory, write_config,
                                                                                  open_page) -> None:
    path = write_config(async_mode="eventlet", check_interval_s=3600)
    server = server_factory(config=path)
    page, rec = open_page(server.url + "/", wait_state="live")
    page.wait_for_selector(".dispenser[data-id=b12]")
    rewritten(path, edited(load_config(path).database).replace("[server]\n", "[server]\ncheck_interval_s = 3600\n", 1)
              .replace('async_mode = "threading"', 'async_mode = "eventlet"'))
    server.proc.send_signal(signal.SIGHUP)
    page.wait_for_selector(".dispenser[data-id=hall]", timeout=10_000)
    page.wait_for_selector(".dispenser[data-id=b12]", state="detached", timeout=10_000)
    assert "rez-de-chaussée" in page.text_content(".dispenser[data-id=cafeteria] .dispenser-name")
    assert page.get_attribute("#connection-status", "data-state") == "live" and not rec.errors

"""Alerts that leave the screen: transitions told once, signed webhooks, Apprise, retries, digests, restarts."""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from app import create_app
from app.config import ConfigError, load_config
from app.notify.tracker import track
from app.notify.worker import Deliverer, backoff
from devkit.servers import ROOT, wait_for
from tests.helpers.auth import bearer
from tests.helpers.config import ADMIN, TOKENS, config_text
from tests.helpers.receiver import Receiver, receiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def notify_text(database: str, url: str, extra: str = "", **server: object) -> str:
    """The test config with one webhook target `it`, told of every kind, and `server` keys."""
    server = {"settle_s": 30, "offline_after_s": 60, "public_url": "https://gel.lan/", **server}
    return config_text(database, **server) + f'\n[[server.notify]]\nid = "it"\nwebhook = "{url}/hook"\n' \
        f'secret = "{SECRET}"\n' + extra


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as box:
        yield box


@pytest.fixture
def make_app(tmp_path: Path):
    """make_app(text) -> an app on that config (the same database file each time: a restart)."""
    made = []

    def make(text: str):
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        app = create_app(load_config(path))
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["usage_store"].engine.dispose()


def run(app, now: float) -> tuple[tuple[int, int], int]:
    """One look for transitions at `now`, then one delivery round at `now`: (raised, resolved), delivered."""
    cfg = app.extensions["usage_config"]
    with app.app_context():
        told = track(app.extensions["figures"], cfg, now)
    return told, Deliverer(app.extensions["usage_store"]).round(cfg, now)


def verified(box: Receiver) -> list[dict]:
    """Every body received, after checking its Standard Webhooks signature with the package's own verifier."""
    out = []
    for r in box.received:
        if r["status"] == 200:
            headers = {k.lower(): v for k, v in r["headers"].items()}
            out.append(Webhook(SECRET).verify(r["body"], headers))
    return out


def test_each_transition_is_told_once_signed_after_it_settled(make_app, hook, tmp_path) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url))
    now = time.time()
    assert run(app, now) == ((3, 0), 0)  # three dispensers never heard from: offline, held while settling
    assert run(app, now + 31) == ((0, 0), 3)
    bodies = verified(hook)
    assert [b["type"] for b in bodies] == ["alert.raised"] * 3
    data = {b["data"]["dispenser"]: b["data"] for b in bodies}
    assert set(data) == set(TOKENS) and data["entree"]["kind"] == "offline"
    assert set(data["entree"]) == {"dispenser", "name", "group", "path", "kind", "since", "level_pct", "empty_at",
                                   "link"}
    assert data["entree"]["name"] == "Entrée" and data["entree"]["level_pct"] == 100
    ids = [r["headers"]["webhook-id"] for r in hook.received]
    assert len(set(ids)) == 3
    # The same look again tells nothing; a use brings entree back online: one resolution.
    assert run(app, now + 32) == ((0, 0), 0)
    app.test_client().post("/mettre_a_jour_donnees", json={"gel_used": 1.5}, headers=bearer(TOKENS["entree"]))
    later = time.time() + 40
    assert run(app, later)[0] == (0, 1)
    assert run(app, later + 31)[1] == 1
    assert verified(hook)[-1]["type"] == "alert.resolved" and verified(hook)[-1]["data"]["dispenser"] == "entree"


def test_a_restart_raises_nothing_again_and_an_alert_that_flapped_tells_nobody(make_app, hook, tmp_path) -> None:
    text = notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url)
    app = make_app(text)
    now = time.time()
    run(app, now)
    app.test_client().post("/mettre_a_jour_donnees", json={"gel_used": 1.5}, headers=bearer(TOKENS["b12"]))
    assert run(app, time.time() + 1) == ((0, 1), 0)  # b12 back before its offline was told: both cancelled
    restarted = make_app(text)
    assert run(restarted, now + 31) == ((0, 0), 2)  # nothing raised again; the two others go out once
    assert sorted(b["data"]["dispenser"] for b in verified(hook)) == ["cafeteria", "entree"]


def test_a_receiver_that_is_down_gets_every_message_in_order_once_it_is_back(make_app, hook, tmp_path) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url))
    now = time.time()
    run(app, now)
    hook.status = 503
    store = app.extensions["usage_store"]
    assert run(app, now + 31)[1] == 0 and len(hook.received) == 1  # the oldest is tried; the others wait behind
    assert run(app, now + 31.5)[1] == 0 and len(hook.received) == 1  # not before its backoff (1 s)
    assert run(app, now + 33)[1] == 0 and len(hook.received) == 2
    assert [backoff(n) for n in (1, 2, 3, 10, 20)] == [1, 2, 4, 512, 600]
    hook.status = 200
    assert run(app, now + 40)[1] == 3
    ids = [r["headers"]["webhook-id"] for r in hook.received]
    assert ids[0] == ids[1] == ids[2]  # one message's id is the same on every try
    assert len({r["headers"]["webhook-id"] for r in hook.received if r["status"] == 200}) == 3
    with app.test_client() as client:
        answer = client.get("/api/notifications", headers=bearer(ADMIN)).get_json()
    assert answer["targets"][0]["pending"] == 0 and {d["status"] for d in answer["deliveries"]} == {"sent"}
    assert [d["attempts"] for d in answer["deliveries"]][-1] == 3
    assert hook.url not in json.dumps(answer) and SECRET not in json.dumps(answer)
    assert store is app.extensions["usage_store"]


def test_a_target_gives_up_after_give_up_h(make_app, hook, tmp_path) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url, give_up_h=1))
    now = time.time()
    run(app, now)
    hook.status = 500
    run(app, now + 31)
    run(app, now + 3700)
    with app.test_client() as client:
        answer = client.get("/api/notifications", headers=bearer(ADMIN)).get_json()
    first = [d for d in answer["deliveries"] if d["attempts"]]
    assert first and first[-1]["status"] == "given_up" and first[-1]["last_error"] == "HTTP 500"


def test_a_storm_reaches_a_person_as_one_digest(make_app, hook, tmp_path) -> None:
    many = "".join(f'\n[[server.dispensers]]\nid = "w{i:02d}"\nname = "Chambre {i}"\ncapacity_ml = 500\n'
                   f'token = "token-storm-{i:010d}"\n' for i in range(12))
    extra = f'\n[[server.notify]]\nid = "cleaners"\napprise = "json://127.0.0.1:{hook.server.server_address[1]}/ntfy"\n'
    text = notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url, extra, digest_after=10)
    text = text.replace("\n[[server.notify]]", many + "\n[[server.notify]]", 1)
    app = make_app(text)
    now = time.time()
    run(app, now)
    run(app, now + 31)
    to_people = [r for r in hook.received if r["path"].startswith("/ntfy")]
    to_machines = [r for r in hook.received if r["path"] == "/hook"]
    assert len(to_people) == 1 and len(to_machines) == 15  # a person gets one digest, a webhook every transition
    digest = json.loads(to_people[0]["body"])
    assert digest["title"].startswith("15 alertes") and "hors ligne ×15" in digest["message"]


def test_quiet_hours_hold_a_message_until_they_end(make_app, hook, tmp_path) -> None:
    extra = f'\n[[server.notify]]\nid = "night"\napprise = "json://127.0.0.1:{hook.server.server_address[1]}/q"\n' \
            'quiet = "00:00-23:59"\nalerts = ["offline"]\n'
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url, extra, timezone="UTC"))
    now = time.time()
    run(app, now)
    run(app, now + 31)
    assert not [r for r in hook.received if r["path"] == "/q"]
    with app.test_client() as client:
        waiting = [d for d in client.get("/api/notifications", headers=bearer(ADMIN)).get_json()["deliveries"]
                   if d["target"] == "night"]
    assert len(waiting) == 3 and all(d["status"] == "waiting" and d["next_try"].endswith("23:59:00.000Z")
                                     for d in waiting)


@pytest.mark.parametrize(("extra", "named"), [
    ('alerts = ["offline", "fire"]\n', "unknown kind(s) ['fire']"),
    ('groups = ["nowhere"]\n', "unknown group(s) ['nowhere']"),
    ('quiet = "22h-6h"\n', 'quiet must look like "22:00-06:00"'),
])
def test_bad_targets_are_refused_at_start_naming_the_key(tmp_path, extra: str, named: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(notify_text("sqlite:///u.db", "http://127.0.0.1:9", extra), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(path)


@pytest.mark.parametrize(("table", "named"), [
    ('id = "x"\nwebhook = "http://127.0.0.1:9/h"\n', "needs its secret"),
    ('id = "x"\nwebhook = "http://127.0.0.1:9/h"\nsecret = "s3cr3t-but-not-whsec"\n', "whsec_ followed by base64"),
    ('id = "x"\nwebhook = "http://127.0.0.1:9/h"\nsecret = "whsec_***notbase64"\n', "not valid base64"),
    ('id = "x"\napprise = "carrierpigeon://loft/7"\n', "scheme 'carrierpigeon' is not one Apprise supports"),
    ('id = "x"\n', "give either webhook (with secret) or apprise"),
])
def test_bad_webhooks_and_urls_are_refused_and_their_secrets_never_shown(tmp_path, table: str, named: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text("sqlite:///u.db") + "\n[[server.notify]]\n" + table, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(named)) as refused:
        load_config(path)
    assert "s3cr3t" not in str(refused.value)


def test_notify_test_sends_one_message_and_says_how_it_went(hook, tmp_path, caplog) -> None:
    path = tmp_path / "config.toml"
    path.write_text(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url), encoding="utf-8")
    create_app(load_config(path)).extensions["usage_store"].engine.dispose()  # a server ran once: the database is there
    command = [sys.executable, "-m", "app", "--config", str(path), "notify-test"]
    done = subprocess.run([*command, "it"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "it: delivered", done.stderr
    assert verified(hook)[0]["type"] == "test"
    hook.status = 500
    failed = subprocess.run([*command, "it"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "not delivered: HTTP 500" in failed.stderr
    unknown = subprocess.run([*command, "nobody"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "known: it" in unknown.stderr
    assert hook.url not in done.stdout + failed.stderr + unknown.stderr
    app = create_app(load_config(path))  # the tests are in the audit, by the account that ran them
    with app.app_context():
        from app.store.auditlog import audit_entries

        entries = audit_entries(app.extensions["usage_store"], 0, time.time() + 60, action="notify.test")
    app.extensions["usage_store"].engine.dispose()
    assert [(e["target"], e["detail"]["outcome"]) for e in entries] == [("it", "not delivered: HTTP 500"),
                                                                          ("it", "delivered")]
    assert entries[0]["who"].startswith("command line (")


def test_a_failing_target_is_logged_by_its_id_never_its_url(make_app, hook, tmp_path, caplog) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url))
    hook.status = 502
    now = time.time()
    with caplog.at_level(logging.WARNING, logger="app.notify.worker"):
        run(app, now)
        run(app, now + 31)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.notify.worker"]
    assert lines == ["notification to it not delivered (try 1): HTTP 502, next try in 1 s"]


def test_kill_9_with_20_deliveries_pending_loses_none_and_sends_none_twice(server_factory, hook, tmp_path) -> None:
    more = "".join(f'\n[[server.dispensers]]\nid = "k{i:02d}"\nname = "Chambre {i}"\ncapacity_ml = 500\n'
                   f'token = "token-kill-{i:011d}"\n' for i in range(17))
    text = notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url, async_mode="eventlet", settle_s=0.2,
                       check_interval_s=0.2, offline_after_s=1)
    path = tmp_path / "config.toml"
    path.write_text(text.replace("\n[[server.notify]]", more + "\n[[server.notify]]", 1), encoding="utf-8")
    hook.status = 503
    server = server_factory(config=path)
    wait_for(lambda: hook.received, 20, message="the first try")
    server.kill()
    hook.status = 200
    server.start()
    wait_for(lambda: len(verified(hook)) >= 20, 30, message="20 deliveries after the restart")
    delivered = [r["headers"]["webhook-id"] for r in hook.received if r["status"] == 200]
    assert len(delivered) == len(set(delivered)) == 20
    everyone = [*TOKENS, *(f"k{i:02d}" for i in range(17))]
    assert sorted(b["data"]["dispenser"] for b in verified(hook)) == sorted(everyone)
    assert hook.url not in server.log() and SECRET not in server.log()


def test_a_cleaner_hears_of_a_low_reservoir_through_ntfy_in_french(make_app, hook, tmp_path) -> None:
    port = hook.server.server_address[1]
    extra = f'\n[[server.notify]]\nid = "cleaners"\napprise = "ntfy://127.0.0.1:{port}/cardio-refills"\n' \
            'alerts = ["low"]\n'
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url, extra))
    app.test_client().post("/mettre_a_jour_donnees", json={"gel_used": 290}, headers=bearer(TOKENS["entree"]))
    now = time.time()
    run(app, now)
    run(app, now + 31)
    to_ntfy = [json.loads(r["body"]) for r in hook.received if r["path"] == "/"]
    assert len(to_ntfy) == 1 and to_ntfy[0]["topic"] == "cardio-refills"
    assert to_ntfy[0]["title"] == "Réservoir bas"
    assert re.fullmatch(r"Entrée : réservoir à 3,3 %, vide vers \d\d:\d\d", to_ntfy[0]["message"]), to_ntfy[0]


@pytest.fixture
def smtp() -> Iterator[list[str]]:
    """A real SMTP server (aiosmtpd) on a free port: the raw messages it received."""
    from aiosmtpd.controller import Controller

    from devkit.servers import free_port

    got: list[str] = []

    class Keep:
        async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook name
            got.append(envelope.content.decode())
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    got.append(f"port={controller.port}")
    yield got
    controller.stop()


def test_the_weekly_report_is_emailed_once_with_its_csv(tmp_path, smtp) -> None:
    import email

    from app.notify.reports import queue_due_reports
    from tests.helpers.wards import ward_config_text

    port = smtp.pop(0).split("=")[1]
    now = time.time()
    earlier = time.gmtime(now - 60)  # the report was due a minute ago
    day = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[earlier.tm_wday]
    text = ward_config_text(database=f"sqlite:///{tmp_path / 'u.db'}", timezone="UTC") + \
        f'\n[[server.reports]]\ngroup = "ward-a"\nday = "{day}"\n' \
        f'time = "{earlier.tm_hour:02d}:{earlier.tm_min:02d}"\n' \
        f'apprise = "mailto://127.0.0.1:{port}?from=gel@hopital.lan&to=hygiene@hopital.lan&mode=insecure"\n'
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    for _ in range(2):  # a restart at the same minute sends nothing again
        app = create_app(load_config(path))
        store, cfg = app.extensions["usage_store"], app.extensions["usage_config"]
        with app.app_context():
            queue_due_reports(store, cfg, now, set())
        Deliverer(store).round(cfg, now)
        store.engine.dispose()
    assert len(smtp) == 1
    message = email.message_from_string(smtp[0])
    assert "Ward A" in email.header.make_header(email.header.decode_header(message["Subject"])).__str__()
    parts = {p.get_content_type(): p for p in message.walk()}
    assert {"text/plain", "text/html", "text/csv"} <= set(parts)
    assert "Mains servies" in parts["text/html"].get_payload(decode=True).decode()
    assert parts["text/csv"].get_filename().startswith("report-ward-a-")
    csv_text = parts["text/csv"].get_payload(decode=True).decode()
    assert csv_text.startswith("section,start,week,end,") and "\ndispenser," in csv_text


def test_after_the_server_was_down_dispensers_get_offline_after_s_to_come_back(make_app, hook, tmp_path) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url))
    cfg, now = app.extensions["usage_config"], time.time()
    with app.app_context():
        assert track(app.extensions["figures"], cfg, now, offline_from=now + 60) == (0, 0)  # still in its grace
        assert track(app.extensions["figures"], cfg, now + 61, offline_from=now + 60) == (3, 0)


def test_the_dashboards_hear_of_a_target_failing_for_15_minutes(server_factory, hook, tmp_path,
                                                                                  open_page) -> None:
    import sqlite3

    database = tmp_path / "u.db"
    path = tmp_path / "config.toml"
    path.write_text(notify_text(f"sqlite:///{database}", hook.url, async_mode="eventlet"), encoding="utf-8")
    hook.status = 502  # the receiver keeps failing
    server = server_factory(config=path)
    with sqlite3.connect(database) as db:  # a message to `it` tried and failing for an hour, in the real file
        db.execute("INSERT INTO outbox (target, msg_id, type, body, created_at, due_at, attempts, last_error) "
                   "VALUES ('it', 'msg_x', 'alert.raised', '{}', ?, ?, 5, 'HTTP 502')", (time.time() - 3600,) * 2)
    # The server reads the outbox at most every 10 s for everyone; nobody asked yet, so the first answer has it.
    assert [n["kind"] for n in requests_get(server.url + "/api/notices")["notices"]] == ["notify_failing"]
    page, rec = open_page(server.url + "/")
    page.wait_for_selector("#server-notices li", timeout=15_000)
    assert page.text_content("#server-notices li").startswith("Les notifications vers « it » échouent depuis")


def requests_get(url: str) -> dict:
    import requests

    return requests.get(url, timeout=10).json()


def test_a_database_refusing_writes_is_a_notice_for_every_dashboard(make_app, hook, tmp_path) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url))
    app.extensions["usage_store"].write_health.refused("disk full")
    notices = app.test_client().get("/api/notices").get_json()["notices"]
    assert notices == [{"kind": "storage", "error": "the database refuses writes: disk full"}]


def test_a_use_is_looked_at_alone_not_with_the_fleet(make_app, hook, tmp_path) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url))
    cfg, figures = app.extensions["usage_config"], app.extensions["figures"]
    now = time.time()
    assert track(figures, cfg, now) == (3, 0)
    app.test_client().post("/mettre_a_jour_donnees", json={"gel_used": 1.5}, headers=bearer(TOKENS["entree"]))
    # Looking at b12 alone sees nothing new; at entree alone, its offline ends. The others stay told.
    assert track(figures, cfg, time.time(), ids=["b12"]) == (0, 0)
    assert track(figures, cfg, time.time(), ids=["entree"]) == (0, 1)
    assert track(figures, cfg, time.time()) == (0, 0)


def test_a_stuck_sensor_reported_by_a_heartbeat_is_an_alert(make_app, hook, tmp_path) -> None:
    app = make_app(notify_text(f"sqlite:///{tmp_path / 'u.db'}", hook.url))
    client, cfg, figures = app.test_client(), app.extensions["usage_config"], app.extensions["figures"]
    assert client.post("/api/dispensers/entree/heartbeat", json={"stuck": "yes"},
                       headers=bearer(TOKENS["entree"])).status_code == 400
    assert client.post("/api/dispensers/entree/heartbeat", json={"backlog": 0, "stuck": True},
                       headers=bearer(TOKENS["entree"])).get_json() == {"status": "ok"}
    assert client.get("/obtenir_donnees_utilisation?dispenser=entree").get_json()["dispensers"][0]["stuck"] is True
    track(figures, cfg, time.time())
    Deliverer(app.extensions["usage_store"]).round(cfg, time.time() + 31)
    raised = [(b["data"]["dispenser"], b["data"]["kind"]) for b in verified(hook)]
    assert ("entree", "stuck") in raised
    client.post("/api/dispensers/entree/heartbeat", json={"stuck": False}, headers=bearer(TOKENS["entree"]))
    assert track(figures, cfg, time.time())[1] == 1  # resolved

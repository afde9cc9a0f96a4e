"""Two server processes on PostgreSQL and Redis: each notification is delivered once, by one of them."""

from __future__ import annotations

import base64
from collections import Counter

import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from devkit.servers import ServerProcess, wait_for
from tests.helpers.config import config_text, pg_engine
from tests.helpers.receiver import receiver

SECRET = "whsec_" + base64.b64encode(b"cluster-secret-cluster-secret-32").decode()


def test_two_processes_deliver_each_notification_once(pg_url, redis_url, tmp_path) -> None:
    with receiver() as hook:
        text = config_text(pg_url, async_mode="eventlet", message_queue=redis_url, settle_s=0.2, offline_after_s=1,
                           check_interval_s=0.2) + \
            f'\n[[server.notify]]\nid = "it"\nwebhook = "{hook.url}/hook"\nsecret = "{SECRET}"\n'
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        servers = [ServerProcess(path).start(30), ServerProcess(path).start(30)]
        try:
            # The three dispensers, never heard from, go offline once the start's grace is over: three messages.
            wait_for(lambda: len(hook.received) >= 3, 30, message="three deliveries")
            # Both processes looked for transitions (each writes what it finds, once, by the message's id) and one
            # delivered: three rows, all sent, and three messages received, each once.
            engine = pg_engine(pg_url)
            try:
                with engine.connect() as conn:
                    rows = conn.execute(sa.text("SELECT msg_id, sent_at FROM outbox")).all()
            finally:
                engine.dispose()
            assert len(rows) == 3 and all(sent is not None for _, sent in rows), rows
            ids = Counter(r["headers"]["webhook-id"] for r in hook.received)
            assert len(ids) == 3 and set(ids.values()) == {1}, ids
            for r in hook.received:
                Webhook(SECRET).verify(r["body"], {k.lower(): v for k, v in r["headers"].items()})
        finally:
            for server in servers:
                server.stop()

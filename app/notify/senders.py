"""Speaking to receivers: a Standard Webhooks signed POST, or any service Apprise knows. Either is cut at 10 s."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config.outlets import NotifyTarget

TIMEOUT_S = 10  # a receiver that hangs is given up on after this, and tried again later
USER_AGENT = "gel-dispenser-server"


class NotDelivered(Exception):
    """A try that failed, with a reason that names no secret (the target's URL is one)."""


def webhook_body(kind: str, created_at: float, data: dict[str, Any]) -> str:
    """`{"type": ..., "timestamp": ISO, "data": {...}}`, without the fields that only serve the texts."""
    shown = {k: v for k, v in data.items() if not k.endswith("_ts")}
    stamp = datetime.fromtimestamp(created_at, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": kind, "timestamp": stamp, "data": shown}, ensure_ascii=False)


def send_webhook(target: NotifyTarget, msg_id: str, body: str) -> None:
    """POST the body, signed (headers webhook-id, webhook-timestamp, webhook-signature); 2xx or NotDelivered."""
    import requests
    from standardwebhooks.webhooks import Webhook

    now = datetime.now(UTC)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(target.secret).sign(msg_id, now, body),
               "Content-Type": "application/json", "User-Agent": USER_AGENT}
    try:
        resp = requests.post(target.webhook, data=body.encode(), headers=headers, timeout=(5, TIMEOUT_S),
                             allow_redirects=False)
    except requests.RequestException as exc:
        raise NotDelivered(f"no answer: {type(exc).__name__}") from None
    resp.close()
    if not 200 <= resp.status_code < 300:
        raise NotDelivered(f"HTTP {resp.status_code}")


def send_apprise(target: NotifyTarget, title: str, body: str, html: bool = False, attach: str | None = None) -> None:
    """Hand the message to Apprise for the target's URL; NotDelivered when the service did not take it."""
    import apprise

    sender = apprise.Apprise()
    sender.add(target.apprise)
    files = apprise.AppriseAttachment(attach) if attach else None
    done = sender.notify(title=title, body=body, attach=files,
                         body_format=apprise.NotifyFormat.HTML if html else apprise.NotifyFormat.TEXT)
    if not done:
        raise NotDelivered("the service did not take it (the server's log has Apprise's reason)")


def send_report(target: NotifyTarget, data: dict[str, Any]) -> None:
    """The weekly report: its HTML, and its CSV as an attachment under its own file name."""
    with tempfile.TemporaryDirectory(prefix="gel-report-") as folder:
        path = Path(folder) / data["filename"]
        path.write_text(data["csv"], encoding="utf-8")
        send_apprise(target, data["title"], data["html"], html=True, attach=str(path))

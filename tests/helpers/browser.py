"""Browser helpers for the dashboard tests: what a page recorded, waits on its state, screenshots."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.helpers.auth import bearer
from tests.helpers.config import NAMES, TOKENS, config_text

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
EVIL_NAME = "<img src=x onerror=alert(1)>"


@dataclass
class Recorded:
    """What a page did: every request and websocket URL, console errors (CSP violations land there), dialogs."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)


def post_use(url: str, gel: float = 1.5, hands: int = 1, dispenser: str = "entree", body: Any = None) -> dict:
    """POST one use (or `body`) as a dispenser; return the JSON answer."""
    resp = requests.post(url + "/mettre_a_jour_donnees", json=body if body is not None else
                         {"gel_used": gel, "hands_detected": hands},
                         headers=bearer(TOKENS[dispenser]), timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def config_with_names(path: Path, names: dict[str, str], **server: Any) -> Path:
    """Write the test config at `path` with some dispenser names replaced (TOML-escaped)."""
    text = config_text(async_mode="eventlet", **server)
    for ident, name in names.items():
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace(f'name = "{NAMES[ident]}"', f'name = "{escaped}"')
    path.write_text(text, encoding="utf-8")
    return path


def record(page: Any, block_socketio: bool = False) -> Recorded:
    """Record what `page` does from now on; with block_socketio, both Socket.IO transports are refused."""
    rec = Recorded()
    page.on("request", lambda r: rec.requests.append(r.url))
    page.on("websocket", lambda ws: rec.requests.append(ws.url))  # websockets are not "request" events
    page.on("response", lambda r: rec.responses.append((r.url, r.status)))
    page.on("console", lambda m: rec.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: rec.errors.append(str(e)))

    def on_dialog(dialog: Any) -> None:
        rec.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    if block_socketio:  # both the long-polling requests and the websocket (page.route misses websockets)
        page.route("**/socket.io/**", lambda route: route.abort())
        page.route_web_socket("**/socket.io/**", lambda ws: ws.close())
    return rec


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG under tests/artifacts/ for review."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def normalized(text: str) -> str:
    """Text with the non-breaking and narrow spaces Intl uses turned into plain spaces."""
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def wait_state_is(page: Any, state: str, timeout_s: float = 10) -> None:
    """Wait until #connection-status says `state`."""
    page.wait_for_function("s => document.getElementById('connection-status').dataset.state === s", arg=state,
                           timeout=timeout_s * 1000)


def wait_value(page: Any, element_id: str, value: float, timeout_s: float = 10) -> None:
    """Wait until the element's data-value equals `value` (numbers compared, not strings)."""
    page.wait_for_function("([id, v]) => Number(document.getElementById(id).dataset.value) === v",
                           arg=[element_id, value], timeout=timeout_s * 1000)


def pump_until(page: Any, condition: Callable[[], object], what: str, timeout_s: float = 5) -> None:
    """Wait for a Python-side condition fed by Playwright callbacks (they only run while Playwright works)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(20)  # lets Playwright run routes and frames; the loop waits on the condition

"""Browser fixtures for the dashboard tests: one headless Chromium per module, pages that record what they do."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import TOKENS, config_text

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
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
                         headers={"Authorization": f"Bearer {TOKENS[dispenser]}"}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def config_with_names(path: Path, names: dict[str, str], **server: Any) -> Path:
    """Write the test config at `path` with some dispenser names replaced (TOML-escaped)."""
    defaults = {"entree": "Entrée", "cafeteria": "Cafétéria", "b12": "Salle B12"}
    text = config_text(async_mode="eventlet", **server)
    for ident, name in names.items():
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace(f'name = "{defaults[ident]}"', f'name = "{escaped}"')
    path.write_text(text, encoding="utf-8")
    return path


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG under tests/artifacts/ for review."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def normalized(text: str) -> str:
    """Text with the non-breaking and narrow spaces Intl uses turned into plain spaces."""
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """One headless Debian Chromium for the whole module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., tuple[Any, Recorded]]]:
    """open_page(url, block_socketio=False, **context_options) -> (page, Recorded); contexts closed after."""
    contexts: list[Any] = []

    def open_(url: str, block_socketio: bool = False, wait_state: str | None = None,
              **options: Any) -> tuple[Any, Recorded]:
        options.setdefault("viewport", {"width": 1440, "height": 1000})
        options.setdefault("locale", "fr-FR")
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
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
        page.goto(url)
        if wait_state:
            wait_state_is(page, wait_state)
        return page, rec

    yield open_
    for context in contexts:
        context.close()


def wait_state_is(page: Any, state: str, timeout_s: float = 10) -> None:
    """Wait until #connection-status says `state`."""
    page.wait_for_function("s => document.getElementById('connection-status').dataset.state === s", arg=state,
                           timeout=timeout_s * 1000)


def wait_value(page: Any, element_id: str, value: float, timeout_s: float = 10) -> None:
    """Wait until the element's data-value equals `value` (numbers compared, not strings)."""
    page.wait_for_function("([id, v]) => Number(document.getElementById(id).dataset.value) === v",
                           arg=[element_id, value], timeout=timeout_s * 1000)

"""Hand (mock sensor pin edge) -> new figure visible in Chromium, through the real dispenser code."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.context import Fault, Unavailable, token

# Every change of the total's text, stamped when the page's script is done with it (what the next paint shows).
WATCH_JS = """
() => {
  const el = document.querySelector('#hands-detected');
  if (!el) throw new Error('no #hands-detected on the page');
  window.__changes = [];
  new MutationObserver(() => window.__changes.push([Date.now(), el.textContent]))
    .observe(el, {childList: true, characterData: true, subtree: true});
}
"""
SHOWS_AT_LEAST = ("(n) => { const t = (document.querySelector('#hands-detected')||{}).textContent||'';"
                  " const v = parseInt(t.replace(/\\D/g, ''), 10); return v >= n; }")


def number(text: str | None) -> int | None:
    """The integer a formatted total shows ("1 234" -> 1234), or None when it shows none."""
    digits = "".join(ch for ch in text or "" if ch.isdigit())
    return int(digits) if digits else None


def first_showing(changes: list[list[Any]], expected: int) -> float:
    """Epoch seconds of the first recorded change whose text shows `expected`; Fault if another total came first.

    The first change alone is not enough: a page that redraws the old total (or a placeholder) at once and the
    new one later would be timed by its redraw.
    """
    for stamp_ms, text in changes:
        shown = number(text)
        if shown == expected:
            return stamp_ms / 1000
        if shown is not None and shown > expected:
            raise Fault(f"the page showed {shown} hands where {expected} was due")
    raise Fault(f"no recorded change of #hands-detected shows {expected} (changes: {changes[:5]})")


def measure(base_url: str, work: Path, chromium: str, hands: int = 10) -> dict:
    """Drive `hands` presences on the dispenser's mock pin; time each edge until the page shows the new total."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from gel_dispenser.config import load_config
    from gel_dispenser.device import Dispenser
    from gel_dispenser.sender import Sender
    from gel_dispenser.simulate import Simulator
    from gel_dispenser.spool import Spool

    logging.getLogger("dispenser").setLevel(logging.WARNING)
    cfg_path = work / "dispenser.toml"
    # Shorter hold, return and cooldown than a real arm so ten hands fit in the budget; none of them is on the
    # measured path (edge -> spool -> POST -> push -> page): the event is spooled and sent before the hold.
    cfg_path.write_text(
        "[dispenser]\n" + f'id = "d000"\nserver_url = "{base_url}"\ntoken = "{token(0)}"\n'
        + f'sensor_pin = 17\nservo_pin = 18\ndose_ml = 1.5\nspool = "{work / "spool-hand.db"}"\n'
        + "hold_s = 0.05\nreturn_s = 0.05\nmin_interval_s = 0.2\nmax_per_minute = 1000\nheartbeat_s = 3600\n"
        + 'log_level = "WARNING"\n', encoding="utf-8")
    cfg = load_config(cfg_path)
    spool = Spool(cfg.spool)
    sender = Sender(cfg, spool).start()
    dispenser = Dispenser(cfg, spool, wake=sender.wake, pin_factory=MockFactory(pin_class=MockPWMPin))
    sim = Simulator(dispenser, stop=threading.Event())
    latencies = []
    try:
        with sync_playwright() as p:
            try:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            except PlaywrightError as exc:
                raise Unavailable(f"Chromium does not start: {exc}") from None
            page = browser.new_page()
            page.goto(base_url + "/")
            try:
                page.wait_for_function(SHOWS_AT_LEAST, arg=0, timeout=20000)
            except PlaywrightTimeout:
                raise Fault("the dashboard showed no total within 20 s of loading") from None
            page.evaluate(WATCH_JS)
            for _ in range(hands):
                expected = number(page.text_content("#hands-detected")) + 1
                dispenser.wait_until(lambda: not dispenser.busy, 10)
                time.sleep(dispenser.ready_in())
                page.evaluate("() => { window.__changes = []; }")
                t0 = time.time()
                sim.hand(True)
                try:
                    page.wait_for_function(SHOWS_AT_LEAST, arg=expected, timeout=10000)
                except PlaywrightTimeout:
                    raise Fault(f"the page did not show {expected} hands within 10 s of the hand") from None
                latencies.append(first_showing(page.evaluate("() => window.__changes"), expected) - t0)
                sim.hand(False)
            browser.close()
    finally:
        dispenser.close()
        sender.stop(2)
        spool.close()
    return {"latencies_s": latencies, "p50_s": statistics.median(latencies)}

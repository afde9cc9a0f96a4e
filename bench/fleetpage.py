"""The fleet step's figures in Chromium: first figures, bytes received per use (CDP), long tasks on the kiosk."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import uuid
from typing import Any

import requests

from bench.context import Fault, Unavailable
from devkit.chromium import CHROMIUM, CHROMIUM_ARGS

LANES = 4  # sending threads: one slow answer does not slow the rate
# performance.now() (ms since navigation start) when both totals are written; the views write them inside the
# animation frame that paints them, so this is the frame that shows the first figures.
FIRST_FIGURES_JS = """
(() => {
  const shown = () => ['gel-used', 'hands-detected'].every((id) => {
    const el = document.getElementById(id);
    return el && el.dataset.value;
  });
  const watch = new MutationObserver(() => {
    if (!shown()) return;
    watch.disconnect();
    window.__firstFigures = performance.now();
  });
  watch.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-value'] });
})();
"""
# The first load over: live, the chart's first read drawn, then an idle main thread.
SETTLED_JS = ("() => document.getElementById('connection-status').dataset.state === 'live'"
              " && document.getElementById('realtime-chart').dataset.total !== undefined")
IDLE_JS = "() => new Promise((done) => requestIdleCallback(done, { timeout: 3000 }))"
LONG_TASKS_JS = """() => {
  window.__turns = 0;
  document.addEventListener('kiosk-page', () => { window.__turns += 1; });
  window.__longTasks = [];
  new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__longTasks.push(e.duration)))
    .observe({ type: 'longtask' });
}"""
TASKS = ("RunTask", "ThreadControllerImpl::RunTask")  # a task of the main thread in Chromium's trace ("toplevel")
SHOWS_AT_LEAST = "(n) => Number(document.getElementById('hands-detected').dataset.value) >= n"


class Uses:
    """Single-event POSTs (uuid4 ids) at a steady rate, each as a dispenser drawn at random; any non-200 is a Fault."""

    def __init__(self, url: str, tokens: list[str], rate: float, count: int, seed: int = 1):
        self.url, self.tokens, self.rate, self.count, self.seed = url, tokens, rate, count, seed
        self.totals: list[int] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._lane, args=(i,), daemon=True) for i in range(LANES)]
        self.t0 = self.t1 = 0.0

    def start(self) -> Uses:
        """Start sending; the k-th use is due at start + k / rate."""
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def alive(self) -> bool:
        """True while some use is still to be sent or answered."""
        return any(t.is_alive() for t in self.threads)

    def _lane(self, lane: int) -> None:
        rng = random.Random(self.seed * 100 + lane)
        with requests.Session() as http:
            for k in range(lane, self.count, LANES):
                time.sleep(max(0.0, self.t0 + k / self.rate - time.monotonic()))
                body = {"gel_used": 1.5, "hands_detected": 1, "event_id": str(uuid.uuid4())}
                try:
                    resp = http.post(self.url + "/mettre_a_jour_donnees", json=body, timeout=10,
                                     headers={"Authorization": f"Bearer {rng.choice(self.tokens)}"})
                except requests.RequestException as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if resp.status_code != 200:
                    self.errors.append(f"{resp.status_code}: {resp.text[:200]}")
                    continue
                self.totals.append(int(resp.json()["hands_detected"]))
                self.t1 = max(self.t1, time.monotonic())

    def finish(self) -> int:
        """Wait for every answer; the highest total of hands answered (what the page must end up showing)."""
        for t in self.threads:
            t.join()
        if self.errors:
            raise Fault(f"{len(self.errors)} of {self.count} POSTs failed (first: {self.errors[0]})")
        return max(self.totals)

    def achieved_rate(self) -> float:
        """Uses per second actually sent, from the first due time to the last answer."""
        return (self.count - 1) / (self.t1 - self.t0) if self.count > 1 and self.t1 > self.t0 else 0.0


class Traffic:
    """What the page receives after `counting` is set, from the CDP Network domain: websocket frames and answers."""

    def __init__(self, cdp: Any):
        self.counting = False
        self.urls: dict[str, str] = {}
        self.so_far: dict[str, int] = {}  # bytes received by each answer still open (headers, then body)
        self.bytes = {"ws": 0, "polls": 0, "other": 0}
        self.counts = {"ws": 0, "polls": 0, "other": 0}
        cdp.on("Network.requestWillBeSent", lambda e: self.urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.webSocketFrameReceived", self._frame)
        cdp.on("Network.loadingFinished", lambda e: self._done(e["requestId"], int(e["encodedDataLength"])))
        # A 304 to the page's fetch (cache: "no-store") ends in loadingFailed (net::ERR_ABORTED) after its headers
        # came: what it received so far is counted.
        cdp.on("Network.loadingFailed", lambda e: self._done(e["requestId"], self.so_far.get(e["requestId"], 0)))
        cdp.send("Network.enable")

    def _response(self, event: dict) -> None:
        self.so_far[event["requestId"]] = int(event["response"].get("encodedDataLength", 0))

    def _data(self, event: dict) -> None:
        rid = event["requestId"]
        self.so_far[rid] = self.so_far.get(rid, 0) + int(event.get("encodedDataLength", 0))

    def _done(self, rid: str, size: int) -> None:
        self.so_far.pop(rid, None)
        url = self.urls.pop(rid, "")
        self._add("polls" if "/obtenir_donnees_utilisation" in url else "other", size)

    def _add(self, kind: str, size: int) -> None:
        if self.counting:
            self.bytes[kind] += size
            self.counts[kind] += 1

    def _frame(self, event: dict) -> None:
        frame = event["response"]
        data = frame["payloadData"]
        size = len(data.encode()) if frame["opcode"] == 1 else len(data) * 3 // 4  # binary frames come base64
        self._add("ws", size + (2 if size < 126 else 4 if size < 65536 else 10))  # plus the frame's header


def pump_while(page: Any, uses: Uses) -> int:
    """Let Playwright deliver the page's events while the uses are sent; the final total answered."""
    while uses.alive():
        page.wait_for_timeout(50)  # Playwright's callbacks run only while it works; the loop waits on the senders
    return uses.finish()


def open_page(browser: Any, url: str, viewport: dict[str, int]) -> tuple[Any, Any, float]:
    """A fresh context (cold cache) on `url`; the page, its context and ms from navigation start to first figures."""
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    context.add_init_script(FIRST_FIGURES_JS)
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("() => window.__firstFigures !== undefined", timeout=20000)
    return page, context, float(page.evaluate("() => window.__firstFigures"))


def settle(page: Any) -> None:
    """Wait for the end of the first load: live, the chart drawn, the main thread idle."""
    page.wait_for_function(SETTLED_JS, timeout=20000)
    page.evaluate(IDLE_JS)


def desk(browser: Any, url: str, tokens: list[str], loads: int, rate: float, window_s: float) -> dict:
    """First figures on `/` (median of `loads` cold loads), then bytes per use with `rate` uses/s for `window_s`."""
    firsts = []
    for _ in range(loads - 1):
        _, context, first = open_page(browser, url + "/", {"width": 1440, "height": 1000})
        firsts.append(first)
        context.close()
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="fr-FR")
    context.add_init_script(FIRST_FIGURES_JS)
    page = context.new_page()
    traffic = Traffic(context.new_cdp_session(page))
    page.goto(url + "/")
    page.wait_for_function("() => window.__firstFigures !== undefined", timeout=20000)
    firsts.append(float(page.evaluate("() => window.__firstFigures")))
    settle(page)
    traffic.counting = True
    uses = Uses(url, tokens, rate, round(rate * window_s), seed=2).start()
    page.wait_for_function(SHOWS_AT_LEAST, arg=pump_while(page, uses), timeout=10000)
    traffic.counting = False
    context.close()
    n = uses.count
    return {"first_figures_ms": statistics.median(firsts), "first_samples_ms": firsts, "uses": n,
            "uses_per_s": uses.achieved_rate(), "bytes_per_use": (traffic.bytes["ws"] + traffic.bytes["polls"]) / n,
            "all_bytes_per_use": sum(traffic.bytes.values()) / n, "bytes": traffic.bytes, "answers": traffic.counts}


def main_thread_tasks(trace: bytes) -> list[tuple[float, float]]:
    """(wall ms, thread CPU ms) of each task the renderer's main thread ran, from a Chromium trace."""
    events = json.loads(trace)["traceEvents"]
    main = {(e["pid"], e["tid"]) for e in events
            if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    return [(e["dur"] / 1000, e.get("tdur", 0) / 1000) for e in events
            if e.get("ph") == "X" and e.get("name") in TASKS and (e["pid"], e.get("tid")) in main]


def kiosk(browser: Any, url: str, tokens: list[str], rate: float, window_s: float) -> dict:
    """The wall display at 1920x1080 with its own page period: long tasks while `rate` uses/s arrive.

    A trace of the same window gives each task's main-thread CPU time beside its wall time: a task far longer
    than its CPU time waited for a core (a loaded machine), it did not work that long.
    """
    page, context, first = open_page(browser, url + "/?kiosk=1", {"width": 1920, "height": 1080})
    settle(page)
    browser.start_tracing(page=page, categories=["toplevel", "__metadata"])
    page.evaluate(LONG_TASKS_JS)
    uses = Uses(url, tokens, rate, round(rate * window_s), seed=3).start()
    page.wait_for_function(SHOWS_AT_LEAST, arg=pump_while(page, uses), timeout=10000)
    tasks, turns = page.evaluate("() => [window.__longTasks, window.__turns]")
    traced = main_thread_tasks(browser.stop_tracing())
    pages = page.get_attribute("#dispenser-list", "data-pages")
    context.close()
    return {"kiosk_first_figures_ms": first, "kiosk_uses": uses.count, "kiosk_uses_per_s": uses.achieved_rate(),
            "kiosk_longest_ms": max(tasks, default=0.0), "kiosk_long_tasks_ms": tasks,
            "kiosk_pages": int(pages) if pages else 1, "kiosk_page_turns": turns,
            "kiosk_traced_over_50ms": [t for t in traced if t[0] > 50],
            "kiosk_longest_traced": max(traced, default=(0.0, 0.0)),
            "kiosk_most_cpu_ms": max((cpu for _, cpu in traced), default=0.0)}


# The round is ready when it has said what to refill: its list or "nothing to refill" shown.
ROUND_READY_JS = """
(() => {
  const ready = () => document.querySelector('.refill-list li')
    || (document.getElementById('refill-empty') && !document.getElementById('refill-empty').hidden);
  const watch = new MutationObserver(() => {
    if (!ready()) return;
    watch.disconnect();
    window.__roundReady = performance.now();
  });
  watch.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['hidden'] });
})();
"""


def round_ready(browser: Any, url: str, group: str, loads: int) -> dict:
    """The refill round of one ward on a phone (`/tournee?group=`): navigation start -> its list shown, cold."""
    times, fetched = [], []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
        context.add_init_script(ROUND_READY_JS)
        page = context.new_page()
        page.on("response", lambda r: fetched.append(r.url))
        page.goto(f"{url}/tournee?group={group}")
        page.wait_for_function("() => window.__roundReady !== undefined", timeout=20000)
        times.append(float(page.evaluate("() => window.__roundReady")))
        context.close()
    whole = [u for u in fetched if "obtenir_donnees_utilisation" in u and "group=" not in u]
    return {"round_ready_ms": statistics.median(times), "round_samples_ms": times, "round_whole_fleet_gets": whole}


def measure(servers: dict[str, tuple[str, list[str]]], loads: int, desk_rate: float, kiosk_rate: float,
            window_s: float, ward: str = "ward-001") -> dict[str, dict]:
    """For each label -> (url, tokens): the desk page's figures, the kiosk's, then one ward's round."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            raise Unavailable(f"Chromium does not start: {exc}") from None
        for label, (url, tokens) in servers.items():
            out[label] = {**desk(browser, url, tokens, loads, desk_rate, window_s),
                          **kiosk(browser, url, tokens, kiosk_rate, window_s),
                          **round_ready(browser, url, ward, loads)}
        browser.close()
    return out

/* Live dashboard: initial GET, Socket.IO push, 5 s polling (always on), Chart.js charts.
 * Plain ES2019, no build step. Every server string goes through textContent, never innerHTML. */
(function () {
  "use strict";

  const settings = JSON.parse(document.getElementById("dashboard-settings").textContent);
  const S = settings.strings;
  const LOCALE = settings.locale;
  const KIOSK = settings.kiosk;
  const TZ = settings.timezone ? { timeZone: settings.timezone } : {};
  const POLL_MS = settings.poll_ms || 5000;
  const REALTIME_THROTTLE_MS = 1500;
  const HISTORY_THROTTLE_MS = 10000;
  const REALTIME_REFRESH_MS = 30000;
  const RELATIVE_REFRESH_MS = 15000;
  const FETCH_TIMEOUT_MS = 4000;
  const RELOAD_GUARD_MS = 60000;

  const $ = (id) => document.getElementById(id);
  const url = (path) => new URL(path, window.location.href).toString();

  const state = {
    payload: null,
    etag: null,
    pollOk: false,
    polling: false,
    socket: null,
    everConnected: false,
    realtimeChart: null,
    historyChart: null,
    range: "today",
    lastEvents: null,
  };

  // ---------- formatting ----------

  const HOUR = settings.lang === "fr" ? "2-digit" : "numeric"; // 08:05 in French, 8:05 AM in English
  const fmt = {
    one: new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 }),
    two: new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
    int: new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 }),
    pct: new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 }),
    clock: new Intl.DateTimeFormat(LOCALE, Object.assign({ hour: HOUR, minute: "2-digit", second: "2-digit" }, TZ)),
    hm: new Intl.DateTimeFormat(LOCALE, Object.assign({ hour: HOUR, minute: "2-digit" }, TZ)),
    hour: new Intl.DateTimeFormat(LOCALE, Object.assign({ hour: "numeric" }, TZ)),
    hourParts: new Intl.DateTimeFormat(LOCALE, Object.assign({ hour: "2-digit", hourCycle: "h23" }, TZ)),
    weekday: new Intl.DateTimeFormat(LOCALE, Object.assign({ weekday: "long" }, TZ)),
    dayMonth: new Intl.DateTimeFormat(LOCALE, Object.assign({ day: "numeric", month: "short" }, TZ)),
    shortDay: new Intl.DateTimeFormat(LOCALE, Object.assign({ weekday: "short", day: "numeric" }, TZ)),
    dateTime: new Intl.DateTimeFormat(LOCALE, Object.assign({ day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }, TZ)),
    isoDay: new Intl.DateTimeFormat("en-CA", Object.assign({ year: "numeric", month: "2-digit", day: "2-digit" }, TZ)),
  };

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m));
  }

  /** [number, unit] for a gel volume in ml: ml below 1000, L from 1000 (e.g. "1,25 L"). */
  function gelParts(ml) {
    if (ml >= 1000) return [fmt.two.format(ml / 1000), "L"];
    return [fmt.one.format(ml), "ml"];
  }

  function gelText(ml) {
    const parts = gelParts(ml);
    return parts[0] + "\u00a0" + parts[1];
  }

  /** The site-local calendar day of a date, as YYYY-MM-DD. */
  function dayKey(date) {
    return fmt.isoDay.format(date);
  }

  function shiftDay(key, days) {
    const [y, m, d] = key.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
  }

  /** "14 h" in French, "2 pm" in English. */
  function hourText(date) {
    if (settings.lang === "fr") {
      const part = fmt.hourParts.formatToParts(date).find((p) => p.type === "hour");
      return String(Number(part ? part.value : 0)) + "\u00a0h";
    }
    return fmt.hour.format(date).toLowerCase().replace(/\s+/g, " ");
  }

  /** "jeudi 14 h" / "Thursday 2 pm", "aujourd'hui 14 h", "demain 9 h" or "12 déc." for later. */
  function whenText(iso) {
    const date = new Date(Math.round(new Date(iso).getTime() / 3600000) * 3600000);
    const today = dayKey(new Date());
    const key = dayKey(date);
    if (key <= today) return S.today + " " + hourText(date);
    if (key === shiftDay(today, 1)) return S.tomorrow + " " + hourText(date);
    if (key <= shiftDay(today, 6)) return fmt.weekday.format(date) + " " + hourText(date);
    return fmt.dayMonth.format(date);
  }

  function agoText(iso) {
    const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 60) return S.now;
    if (seconds < 3600) return fill(S.ago_min, { n: Math.floor(seconds / 60) });
    if (seconds < 86400) return fill(S.ago_h, { n: Math.floor(seconds / 3600) });
    return fill(S.ago_d, { n: Math.floor(seconds / 86400) });
  }

  function stampText(iso) {
    const date = new Date(iso);
    return dayKey(date) === dayKey(new Date()) ? fmt.clock.format(date) : fmt.dateTime.format(date);
  }

  // ---------- DOM helpers (textContent only) ----------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setText(node, text) {
    const value = String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  /** Number + small unit inside one element: textContent reads "1,25 L". */
  function setAmount(node, number, unit) {
    node.replaceChildren(document.createTextNode(number + "\u00a0"), el("span", "unit", unit));
  }

  // ---------- rendering ----------

  function renderTotals(payload) {
    const gel = $("gel-used");
    const parts = gelParts(payload.gel_used);
    setAmount(gel, parts[0], parts[1]);
    gel.dataset.value = String(payload.gel_used);
    const hands = $("hands-detected");
    setText(hands, fmt.int.format(payload.hands_detected));
    hands.dataset.value = String(payload.hands_detected);
    const updated = $("last-update");
    setText(updated, stampText(payload.updated_at));
    updated.dateTime = payload.updated_at;
  }

  function renderAlerts(alerts) {
    const box = $("alerts");
    const list = $("alert-list");
    const items = (alerts || []).map((alert) => {
      const item = el("li", "alert alert-" + alert.kind);
      item.dataset.kind = alert.kind;
      item.dataset.dispenser = alert.dispenser;
      item.appendChild(el("span", "alert-icon"));
      const template = S["alert_" + alert.kind] || "{name}: " + alert.kind;
      item.appendChild(el("span", "alert-text", fill(template, { name: alert.name })));
      return item;
    });
    list.replaceChildren(...items);
    box.hidden = items.length === 0;
  }

  function buildCard(entry) {
    const card = el("article", "dispenser");
    card.dataset.id = entry.id;
    const head = el("header", "dispenser-head");
    const parts = {
      name: el("h3", "dispenser-name"),
      badge: el("span", "badge"),
      gauge: el("div", "gauge"),
      fill: el("div", "gauge-fill"),
      level: el("span", "gauge-label"),
      gel: el("dd", "figure-gel"),
      hands: el("dd", "figure-hands"),
      doses: el("dd", "figure-doses"),
      empty: el("span", "dispenser-empty"),
      seen: el("span", "dispenser-seen"),
    };
    head.append(parts.name, parts.badge);
    parts.gauge.setAttribute("role", "meter");
    parts.gauge.setAttribute("aria-valuemin", "0");
    parts.gauge.setAttribute("aria-valuemax", "100");
    parts.gauge.setAttribute("aria-label", S.level);
    parts.gauge.append(parts.fill, parts.level);
    const figures = el("dl", "dispenser-figures");
    [[S.gel, parts.gel], [S.hands, parts.hands], [S.doses, parts.doses]].forEach(([label, dd]) => {
      const row = el("div", "figure");
      row.append(el("dt", null, label), dd);
      figures.appendChild(row);
    });
    const body = el("div", "dispenser-body");
    body.append(parts.gauge, figures);
    const foot = el("footer", "dispenser-foot");
    foot.append(parts.empty, parts.seen);
    card.append(head, body, foot);
    card._parts = parts;
    return card;
  }

  function renderCard(card, entry) {
    const p = card._parts;
    const offline = !entry.online;
    card.classList.toggle("is-offline", offline);
    card.classList.toggle("is-low", !!entry.low);
    card.classList.toggle("is-idle", !!entry.no_use);
    setText(p.name, entry.name);
    card.title = entry.name;
    setText(p.badge, offline ? S.offline : entry.low ? S.low : S.online);
    p.badge.className = "badge " + (offline ? "badge-offline" : entry.low ? "badge-low" : "badge-online");
    const level = Math.max(0, Math.min(100, Number(entry.level_pct) || 0));
    p.fill.style.height = level + "%"; // CSSOM: allowed by the style-src CSP, unlike a style attribute
    setText(p.level, fmt.pct.format(level) + "\u00a0%");
    p.gauge.setAttribute("aria-valuenow", String(level));
    const gel = gelParts(entry.gel_used);
    setAmount(p.gel, gel[0], gel[1]);
    setText(p.hands, fmt.int.format(entry.hands_detected));
    setText(p.doses, fmt.int.format(entry.events));
    setText(p.empty, entry.empty_at ? fill(S.empty_at, { when: whenText(entry.empty_at) }) : S.empty_unknown);
    let seen = entry.last_seen ? fill(S.seen, { when: agoText(entry.last_seen) }) : S.never_seen;
    if (offline && entry.last_seen) seen += " · " + S.stale;
    setText(p.seen, seen);
    if (entry.last_seen) p.seen.title = stampText(entry.last_seen);
  }

  function renderDispensers(entries) {
    const list = $("dispenser-list");
    const existing = new Map();
    Array.from(list.children).forEach((card) => existing.set(card.dataset.id, card));
    const cards = entries.map((entry) => {
      const card = existing.get(entry.id) || buildCard(entry);
      renderCard(card, entry);
      return card;
    });
    const same = cards.length === list.children.length && cards.every((c, i) => list.children[i] === c);
    if (!same) list.replaceChildren(...cards);
    list.dataset.count = String(cards.length);
  }

  function render() {
    const payload = state.payload;
    if (!payload) return;
    renderTotals(payload);
    renderAlerts(payload.alerts);
    renderDispensers(payload.dispensers || []);
  }

  function totalEvents(payload) {
    return (payload.dispensers || []).reduce((sum, d) => sum + (d.events || 0), 0);
  }

  /** Take new figures from any source; an older payload (a slow poll after a push) is ignored. */
  function apply(payload) {
    if (!payload || typeof payload !== "object") return;
    const current = state.payload;
    if (current && payload.updated_at && current.updated_at && payload.updated_at < current.updated_at) return;
    state.payload = payload;
    render();
    const events = totalEvents(payload);
    if (state.lastEvents !== null && events !== state.lastEvents) {
      scheduleRealtime();
      scheduleHistory();
    }
    state.lastEvents = events;
  }

  // ---------- connection state ----------

  function updateConnection() {
    const socketUp = !!(state.socket && state.socket.connected);
    const mode = socketUp ? "live" : state.pollOk ? "polling" : "offline";
    const node = $("connection-status");
    if (node.dataset.state !== mode) node.dataset.state = mode;
    const engine = socketUp && state.socket.io.engine;
    node.dataset.transport = engine && engine.transport ? engine.transport.name : "";
    setText(node.querySelector(".connection-label"), S["state_" + mode]);
    document.documentElement.classList.toggle("is-disconnected", mode === "offline");
    $("stale-banner").hidden = mode !== "offline" || !state.payload;
  }

  async function fetchWithTimeout(path, options) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      return await fetch(url(path), Object.assign({ signal: controller.signal, credentials: "same-origin" }, options));
    } finally {
      clearTimeout(timer);
    }
  }

  /** GET the figures with If-None-Match; 304 means nothing changed. */
  async function poll() {
    if (state.polling) return;
    state.polling = true;
    const wasOk = state.pollOk;
    try {
      const headers = state.etag ? { "If-None-Match": state.etag } : {};
      const resp = await fetchWithTimeout("obtenir_donnees_utilisation", { headers: headers, cache: "no-store" });
      if (resp.status === 200) {
        state.etag = resp.headers.get("ETag");
        apply(await resp.json());
      } else if (resp.status !== 304) {
        throw new Error("HTTP " + resp.status);
      }
      state.pollOk = true;
      if (!wasOk && state.everConnected) checkVersion();
    } catch (err) {
      state.pollOk = false;
    } finally {
      state.polling = false;
      updateConnection();
    }
  }

  function connectSocket() {
    if (typeof window.io !== "function") return;
    const socket = window.io({
      path: new URL("socket.io", window.location.href).pathname,
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      timeout: 8000,
    });
    state.socket = socket;
    socket.on("connect", () => {
      state.everConnected = true;
      updateConnection();
      checkVersion();
    });
    socket.on("disconnect", () => {
      updateConnection();
      poll(); // find out at once whether the server is gone or only the websocket
    });
    socket.on("connect_error", updateConnection);
    socket.io.on("upgrade", updateConnection);
    socket.on("donnees_utilisation", apply);
  }

  // ---------- version: reload when the server comes back with new files ----------

  async function checkVersion() {
    try {
      const resp = await fetchWithTimeout("api/version", { cache: "no-store" });
      if (!resp.ok) return;
      const body = await resp.json();
      if (!body.version || body.version === settings.version) return;
      if (KIOSK) {
        const last = Number(window.sessionStorage.getItem("dashboard-reloaded-at") || 0);
        if (Date.now() - last < RELOAD_GUARD_MS) return;
        window.sessionStorage.setItem("dashboard-reloaded-at", String(Date.now()));
        window.location.reload();
      } else {
        $("reload-notice").hidden = false;
      }
    } catch (err) {
      /* the next reconnection will ask again */
    }
  }

  // ---------- charts ----------

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function baseOptions() {
    const grid = cssVar("--chart-grid");
    const text = cssVar("--chart-text");
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: KIOSK ? false : { duration: 300 },
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false }, tooltip: { enabled: !KIOSK } },
      scales: {
        x: { grid: { display: false }, ticks: { color: text, maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
        y: { beginAtZero: true, grid: { color: grid }, ticks: { color: text, precision: 0 } },
      },
    };
  }

  function makeRealtimeChart() {
    const canvas = $("realtime-chart");
    if (!canvas || typeof window.Chart !== "function") return null;
    if (KIOSK) window.Chart.defaults.font.size = Math.max(12, Math.round(window.innerHeight / 60));
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: [],
        datasets: [{ label: S.doses, data: [], backgroundColor: cssVar("--accent"), borderRadius: 2,
          barPercentage: 0.9, categoryPercentage: 0.9 }],
      },
      options: baseOptions(),
    });
  }

  function makeHistoryChart() {
    const canvas = $("history-chart");
    if (!canvas || typeof window.Chart !== "function") return null;
    const options = baseOptions();
    options.plugins.legend = { display: true, position: "bottom", labels: { color: cssVar("--chart-text"), boxWidth: 12 } };
    options.scales.gel = { position: "right", beginAtZero: true, grid: { display: false }, ticks: { color: cssVar("--chart-text") } };
    options.scales.y.title = { display: false };
    return new window.Chart(canvas, {
      data: {
        labels: [],
        datasets: [
          { type: "bar", label: S.doses_axis, data: [], backgroundColor: cssVar("--accent"), borderRadius: 3, yAxisID: "y", order: 2 },
          { type: "line", label: S.gel_axis, data: [], borderColor: cssVar("--accent-2"), backgroundColor: cssVar("--accent-2"),
            pointRadius: 2, cubicInterpolationMode: "monotone", yAxisID: "gel", order: 1 },
        ],
      },
      options: options,
    });
  }

  function throttled(fn, wait) {
    let last = 0;
    let timer = null;
    return function () {
      if (timer) return;
      const delay = Math.max(0, last + wait - Date.now());
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn();
      }, delay);
    };
  }

  async function getHistory(query) {
    const resp = await fetchWithTimeout("api/history?" + new URLSearchParams(query).toString(), { cache: "no-store" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    return resp.json();
  }

  async function refreshRealtime() {
    if (!state.realtimeChart) return;
    try {
      const data = await getHistory({ bucket: "minute" });
      const chart = state.realtimeChart;
      chart.data.labels = data.points.map((p) => fmt.hm.format(new Date(p.start)));
      chart.data.datasets[0].data = data.points.map((p) => p.events);
      chart.update();
      $("realtime-chart").dataset.total = String(data.points.reduce((s, p) => s + p.events, 0));
    } catch (err) {
      /* keep the last chart; the next push or refresh tries again */
    }
  }

  function rangeQuery(range) {
    const today = dayKey(new Date());
    if (range === "7d") return { bucket: "day", from: shiftDay(today, -6) };
    if (range === "30d") return { bucket: "day", from: shiftDay(today, -29) };
    return { bucket: "hour", from: today, to: shiftDay(today, 1) }; // the whole day, later hours at zero
  }

  function historyLabel(iso, bucket) {
    const date = new Date(iso);
    return bucket === "hour" ? hourText(date) : fmt.shortDay.format(date);
  }

  async function refreshHistory() {
    if (!state.historyChart) return;
    const query = rangeQuery(state.range);
    const link = $("csv-link");
    if (link) link.href = url("api/export.csv?" + new URLSearchParams(query).toString());
    try {
      const data = await getHistory(query);
      const chart = state.historyChart;
      chart.data.labels = data.points.map((p) => historyLabel(p.start, data.bucket));
      chart.data.datasets[0].data = data.points.map((p) => p.events);
      chart.data.datasets[1].data = data.points.map((p) => Math.round(p.gel_used * 10) / 10);
      chart.update();
    } catch (err) {
      /* keep the last chart */
    }
  }

  const scheduleRealtime = throttled(refreshRealtime, REALTIME_THROTTLE_MS);
  const scheduleHistory = throttled(refreshHistory, HISTORY_THROTTLE_MS);

  function setupHistoryControls() {
    document.querySelectorAll("[data-range]").forEach((button) => {
      button.addEventListener("click", () => {
        state.range = button.dataset.range;
        document.querySelectorAll("[data-range]").forEach((b) => {
          b.setAttribute("aria-pressed", String(b === button));
        });
        refreshHistory();
      });
    });
    const notice = $("reload-notice");
    if (notice) notice.addEventListener("click", () => window.location.reload());
  }

  // ---------- start ----------

  function start() {
    setupHistoryControls();
    state.realtimeChart = makeRealtimeChart();
    state.historyChart = makeHistoryChart();
    poll(); // the initial figures
    connectSocket();
    setInterval(poll, POLL_MS); // always on, even while the websocket is up
    setInterval(refreshRealtime, REALTIME_REFRESH_MS); // slide the last-hour window
    setInterval(render, RELATIVE_REFRESH_MS); // "seen 3 min ago" keeps moving
    refreshRealtime();
    refreshHistory();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

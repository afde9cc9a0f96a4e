/* Chart.js charts: doses per minute over the last hour (also in kiosk mode) and the history panel (desktop). */
import { $, dayKey, fmt, hourText, shiftDay } from "../shared/format.js";
import { live } from "../shared/live.js";
import { KIOSK, S, settings } from "../shared/settings.js";
import { state } from "../shared/state.js";
import { Chart } from "../shared/vendor.js";

// Doses per minute: a desk sees its own test press within seconds; a wall redraws its canvas at most every 10 s,
// which keeps the main thread free for the tiles and the traffic per use small.
const REALTIME_THROTTLE_MS = KIOSK ? 10000 : 1500;
const HISTORY_THROTTLE_MS = 10000;
const REALTIME_REFRESH_MS = 30000;
// A wall redraws without animation, and so does a screen whose user asked for less motion.
const STILL = KIOSK || window.matchMedia("(prefers-reduced-motion: reduce)").matches;
const charts = { realtime: null, history: null, range: "today", lastEvents: null };

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function baseOptions() {
  const text = cssVar("--chart-text");
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: STILL ? false : { duration: 300 },
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { display: false }, tooltip: { enabled: !KIOSK } },
    scales: {
      x: { grid: { display: false }, ticks: { color: text, maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
      y: { beginAtZero: true, grid: { color: cssVar("--chart-grid") }, ticks: { color: text, precision: 0 } },
    },
  };
}

function makeRealtimeChart() {
  const canvas = $("realtime-chart");
  if (!canvas || typeof Chart !== "function") return null;
  if (KIOSK) Chart.defaults.font.size = Math.max(12, Math.round(window.innerHeight / 60));
  return new Chart(canvas, {
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
  if (!canvas || typeof Chart !== "function") return null;
  const options = baseOptions();
  const text = cssVar("--chart-text");
  options.plugins.legend = { display: true, position: "bottom", labels: { color: text, boxWidth: 12 } };
  options.scales.gel = { position: "right", beginAtZero: true, grid: { display: false }, ticks: { color: text } };
  options.scales.y.title = { display: false };
  return new Chart(canvas, {
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

/** `query` as a URL query, for the group on screen if any: a group view charts and exports its own use. */
function queryText(query) {
  const params = new URLSearchParams(query);
  if (settings.group) params.set("group", settings.group);
  return params.toString();
}

async function getHistory(query) {
  const resp = await live.fetch("api/history?" + queryText(query), { cache: "no-store" });
  if (!resp.ok) throw new Error("HTTP " + resp.status);
  return resp.json();
}

async function refreshRealtime() {
  if (!charts.realtime) return;
  try {
    const data = await getHistory({ bucket: "minute" });
    const chart = charts.realtime;
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
  if (!charts.history) return;
  const query = rangeQuery(charts.range);
  const link = $("csv-link");
  if (link) link.href = live.url("api/export.csv?" + queryText(query));
  try {
    const data = await getHistory(query);
    const chart = charts.history;
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
      charts.range = button.dataset.range;
      document.querySelectorAll("[data-range]").forEach((b) => {
        b.setAttribute("aria-pressed", String(b === button));
      });
      refreshHistory();
    });
  });
}

/** New doses counted (any source): both charts ask the server again, throttled. */
function onChange() {
  const events = state.totalEvents();
  if (charts.lastEvents !== null && events !== charts.lastEvents) {
    scheduleRealtime();
    scheduleHistory();
  }
  charts.lastEvents = events;
}

function start() {
  setupHistoryControls();
  charts.realtime = makeRealtimeChart();
  charts.history = makeHistoryChart();
  state.onChange(onChange);
  setInterval(refreshRealtime, REALTIME_REFRESH_MS); // slide the last-hour window
  refreshRealtime();
  refreshHistory();
}

const chartsApi = { start: start };

export { chartsApi as charts };

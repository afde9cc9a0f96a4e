/* The weekly trend of a group (Chart.js): compliance per week as bars coloured against the target, the target as a
 * dashed line, the entry rate as a line when the ward has door counters. A week with a dispenser offline is
 * hatched: its figures are incomplete. Each bar carries its value, so a printout reads without a tooltip. */
import { rates as R } from "./rates.js";
import { settings } from "../shared/settings.js";
import { Chart } from "../shared/vendor.js";

const NARROW_PX = 520;
const COLON = settings.lang === "fr" ? "\u00a0: " : ": ";

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const COLORS = { ok: "--ok", near: "--warn", below: "--danger", unset: "--accent", none: "--accent" };

/** Diagonal stripes of `color` on a pale ground: an incomplete week. */
function hatch(color) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const ctx = tile.getContext("2d");
  ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
  ctx.fillRect(0, 0, 8, 8);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  ctx.moveTo(-2, 10);
  ctx.lineTo(10, -2);
  ctx.moveTo(6, 10);
  ctx.lineTo(10, 6);
  ctx.moveTo(-2, 2);
  ctx.lineTo(2, -2);
  ctx.stroke();
  return ctx.createPattern(tile, "repeat");
}

// Writes each bar's rate in its top (above a bar too short to hold it): Chart.js has no value labels of its own,
// and inside the bar no line drawn over it (target, entry rate) hides the figure.
const valueLabels = {
  id: "valueLabels",
  afterDatasetsDraw(chart) {
    const meta = chart.getDatasetMeta(0);
    const values = chart.data.datasets[0].data;
    const ctx = chart.ctx;
    ctx.save();
    ctx.textAlign = "center";
    meta.data.forEach((bar, i) => {
      if (!R.isNum(values[i]) || bar.width < 22) return;
      const text = R.pctText(values[i]).replace("\u00a0", "");
      ctx.font = "700 " + (bar.width < 40 ? 9 : 11) + "px system-ui, sans-serif";
      const inside = bar.base - bar.y > 20;
      const hatched = chart.data.datasets[0].offline[i];
      if (inside && hatched) { // a white plate over the stripes
        const w = ctx.measureText(text).width + 6;
        ctx.fillStyle = "rgba(255, 255, 255, 0.92)";
        ctx.fillRect(bar.x - w / 2, bar.y + 2, w, 14);
      }
      ctx.fillStyle = inside && !hatched ? "#fff" : cssVar("--text");
      ctx.fillText(text, bar.x, inside ? bar.y + 13 : bar.y - 4);
    });
    ctx.restore();
  },
};

function datasets(rows, answer) {
  const values = rows.map((r) => (R.isNum(r.compliance_pct) ? r.compliance_pct : null));
  const colors = rows.map((r) => {
    const color = cssVar(COLORS[R.level(r.compliance_pct, answer.target_pct)]);
    return r.offline ? hatch(color) : color;
  });
  const borders = rows.map((r) => cssVar(COLORS[R.level(r.compliance_pct, answer.target_pct)]));
  const sets = [{ type: "bar", label: R.t("chart_compliance"), data: values, backgroundColor: colors,
    offline: rows.map((r) => !!r.offline),
    borderColor: borders, borderWidth: rows.map((r) => (r.offline ? 1.5 : 0)), borderRadius: 3, order: 2 }];
  if (R.isNum(answer.target_pct)) {
    sets.push({ type: "line", label: R.t("chart_target"), data: rows.map(() => answer.target_pct),
      borderColor: cssVar("--text"), borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, order: 1 });
  }
  if (rows.some((r) => R.isNum(r.entry_rate_pct))) {
    sets.push({ type: "line", label: R.t("chart_entry_rate"), data: rows.map((r) => r.entry_rate_pct),
      borderColor: cssVar("--accent-2"), backgroundColor: cssVar("--accent-2"), pointRadius: 3, spanGaps: false,
      order: 0 });
  }
  return sets;
}

/** The legend, in dataset order; the bars' swatch is neutral (each bar takes the colour of its level). */
function legendItems(chart) {
  const items = Chart.defaults.plugins.legend.labels.generateLabels(chart);
  items.sort((a, b) => a.datasetIndex - b.datasetIndex);
  if (items[0]) {
    items[0].fillStyle = cssVar("--muted");
    items[0].strokeStyle = cssVar("--muted");
    items[0].lineWidth = 0;
  }
  return items;
}

/** "S13" over "23 mars" under each bar; on a phone "S13" alone (the dates would collide). */
function labelsFor(rows, width) {
  return rows.map((r) => (width < NARROW_PX ? R.weekShort(r) : [R.weekShort(r), R.dayMonthText(r.start)]));
}

// Less motion asked for by the user: the chart is drawn at once.
const STILL = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

function options(rows, print) {
  const text = cssVar("--chart-text") || cssVar("--muted");
  const top = Math.max(100, ...rows.map((r) => r.compliance_pct || 0), ...rows.map((r) => r.entry_rate_pct || 0));
  return {
    responsive: true, maintainAspectRatio: false, animation: print || STILL ? false : { duration: 250 },
    devicePixelRatio: print ? 2 : undefined,
    onResize: (chart, size) => {
      chart.data.labels = labelsFor(rows, size.width);
    },
    layout: { padding: { top: 16 } },
    interaction: { mode: "index", intersect: false },
    plugins: {
      legend: { display: true, position: "bottom", labels: { color: text, boxWidth: 12, generateLabels: legendItems } },
      tooltip: { callbacks: {
        label: (item) => item.dataset.label + COLON + R.pctText(item.raw),
        afterBody: (items) => {
          const row = rows[items[0].dataIndex];
          return row && row.offline ? [R.t("incomplete")] : [];
        },
      } },
    },
    scales: {
      x: { grid: { display: false }, ticks: { color: text, maxRotation: 0, autoSkip: false } },
      y: { beginAtZero: true, suggestedMax: Math.ceil(top / 10) * 10, grid: { color: cssVar("--chart-grid") },
        ticks: { color: text, callback: (v) => v + " %" } },
    },
  };
}

/** Draw (or redraw) the trend of `answer.rows` on `canvas`; `print` draws once, sharp, without animation. */
function draw(canvas, answer, print) {
  if (!canvas || typeof Chart !== "function") return;
  const rows = answer.rows || [];
  const labels = labelsFor(rows, canvas.parentNode.clientWidth);
  canvas.dataset.weeks = String(rows.length);
  canvas.dataset.values = JSON.stringify(rows.map((r) => r.compliance_pct));
  if (canvas._chart) {
    canvas._chart.data.labels = labels;
    canvas._chart.data.datasets = datasets(rows, answer);
    canvas._chart.options = options(rows, print);
    canvas._chart.update();
    return;
  }
  canvas._chart = new Chart(canvas, { data: { labels: labels, datasets: datasets(rows, answer) },
    options: options(rows, print), plugins: [valueLabels] });
}

export const rateChart = { draw: draw };

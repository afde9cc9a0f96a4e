/* The weekly trend of a group (Chart.js): compliance per week as bars coloured against the target, the target as a
 * dashed line, the entry rate as a line when the ward has door counters. A week with a dispenser offline is
 * hatched: its figures are incomplete. Each bar carries its value, so a printout reads without a tooltip. */
(function (G) {
  "use strict";

  const R = G.rates;
  const COLON = G.settings.lang === "fr" ? "\u00a0: " : ": ";

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

  // Writes each bar's rate above it (Chart.js has no value labels of its own).
  const valueLabels = {
    id: "valueLabels",
    afterDatasetsDraw(chart) {
      const meta = chart.getDatasetMeta(0);
      const values = chart.data.datasets[0].data;
      const ctx = chart.ctx;
      ctx.save();
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.fillStyle = cssVar("--text");
      ctx.textAlign = "center";
      meta.data.forEach((bar, i) => {
        if (R.isNum(values[i])) ctx.fillText(R.pctText(values[i]).replace("\u00a0", ""), bar.x, bar.y - 4);
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

  function options(rows, print) {
    const text = cssVar("--chart-text") || cssVar("--muted");
    const top = Math.max(100, ...rows.map((r) => r.compliance_pct || 0), ...rows.map((r) => r.entry_rate_pct || 0));
    return {
      responsive: true, maintainAspectRatio: false, animation: print ? false : { duration: 250 },
      devicePixelRatio: print ? 2 : undefined,
      layout: { padding: { top: 16 } },
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { display: true, position: "bottom", labels: { color: text, boxWidth: 12 } },
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
    if (!canvas || typeof window.Chart !== "function") return;
    const rows = answer.rows || [];
    const labels = rows.map((r) => [R.weekShort(r), R.dayMonthText(r.start)]);
    canvas.dataset.weeks = String(rows.length);
    canvas.dataset.values = JSON.stringify(rows.map((r) => r.compliance_pct));
    if (canvas._chart) {
      canvas._chart.data.labels = labels;
      canvas._chart.data.datasets = datasets(rows, answer);
      canvas._chart.options = options(rows, print);
      canvas._chart.update();
      return;
    }
    canvas._chart = new window.Chart(canvas, { data: { labels: labels, datasets: datasets(rows, answer) },
      options: options(rows, print), plugins: [valueLabels] });
  }

  G.rateChart = { draw: draw };
})(window.Gel = window.Gel || {});

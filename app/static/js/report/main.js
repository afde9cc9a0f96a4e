/* The weekly report (`/rapport?group=ID&week=YYYY-Www`), a page made to be printed (A4; the PDF is the browser's
 * print): the week's rates against the target, the weeks before it, day by day, the subgroups, and the dispensers
 * offline, empty or in test mode during the week. The group's figures from GET /api/report alone (this week's rates
 * over its days so far, and the weeks before it, as many as the server gives); the subgroups' from /api/compliance. */
import { rateChart } from "../compliance/ratechart.js";
import { rates as R } from "../compliance/rates.js";
import { rateTables } from "../compliance/ratetables.js";
import { $, el, fmt, setText, shiftDay } from "../shared/format.js";
import { settings } from "../shared/settings.js";

const GROUP = settings.group || null;
const FROM = settings.week_from;
const TO = settings.week_to;
const TODAY = settings.today;
const COLUMNS = ["first", "patients", "opps", "hands", "compliance", "entry_rate", "ml_pd", "state"];
const tree = settings.groups || [];
const byId = new Map(tree.map((g) => [g.id, g]));
const children = tree.filter((g) => (g.parent && byId.has(g.parent) ? g.parent : null) === GROUP);

function query(params) {
  const q = new URLSearchParams();
  Object.keys(params).forEach((k) => { if (params[k]) q.set(k, params[k]); });
  return q.toString();
}

/** "2026-W13" for the ISO week holding a date (Thursday decides the year). */
function isoWeek(iso) {
  const thursday = shiftDay(R.mondayOf(iso), 3);
  const year = Number(thursday.slice(0, 4));
  const first = R.mondayOf(year + "-01-04"); // week 1 holds 4 January
  const n = Math.round((Date.parse(R.mondayOf(thursday)) - Date.parse(first)) / (7 * 86400000)) + 1;
  return year + "-W" + String(n).padStart(2, "0");
}

/** This page for another week (or another group), keeping the language. */
function pageHref(week, path, group) {
  const lang = new URLSearchParams(window.location.search).get("lang");
  return (path || window.location.pathname) + "?" + query({ group: group || GROUP, week: week, lang: lang });
}

function durationText(seconds) {
  const hours = seconds / 3600;
  if (hours < 24) return R.t("duration_h", { h: fmt.one.format(hours) });
  return R.t("duration_d", { d: Math.floor(hours / 24), h: Math.round(hours % 24) });
}

function renderSummary(row, answer, report) {
  const lvl = R.level(row.compliance_pct, answer.target_pct);
  R.setLevel($("summary-compliance"), lvl);
  const rate = $("report-rate");
  setText(rate, R.pctText(row.compliance_pct));
  rate.dataset.value = R.isNum(row.compliance_pct) ? String(row.compliance_pct) : "";
  setText($("report-rate-status"), R.isNum(row.compliance_pct) ? R.levelText(lvl, answer.target_pct)
    : R.whyNoRate(row, answer));
  const entry = $("report-entry-rate");
  setText(entry, row.entries ? R.pctText(row.entry_rate_pct) : "—");
  entry.dataset.value = R.isNum(row.entry_rate_pct) ? String(row.entry_rate_pct) : "";
  setText($("report-entries"), row.entries ? R.intText(row.entries) + " " + R.t("col_entries").toLowerCase()
    : R.t("entry_rate_none"));
  const ml = $("report-ml");
  setText(ml, R.mlText(row.ml_per_patient_day));
  ml.dataset.value = R.isNum(row.ml_per_patient_day) ? String(row.ml_per_patient_day) : "";
  setText($("report-hk"), R.referenceText(answer));
  setText($("report-basis"), [
    R.intText(row.hands) + " " + R.t("hands").toLowerCase(),
    R.intText(row.expected_opportunities) + " " + R.t("col_opps").toLowerCase(),
    R.intText(row.patient_days) + " " + R.t("col_patient_days").toLowerCase(),
    R.mlText(row.gel_ml) + " " + R.t("gel").toLowerCase(),
  ].join(" · "));
  const names = new Map((report.dispensers || []).map((d) => [d.id, d.name]));
  $("report-offline").hidden = !row.offline;
  setText($("report-offline"), row.offline ? R.t("incomplete") + " — " + R.offlineText(row, (id) => names.get(id)) : "");
}

function dispenserRow(d) {
  const tr = el("tr", "dispenser-row");
  tr.dataset.id = d.id;
  const name = el("th", "col-group");
  name.scope = "row";
  name.append(el("span", "row-name", d.name), el("span", "row-path", (d.path || []).join(" \u203a ") + " · " + d.id));
  const notes = [];
  if (d.mode === "test") notes.push(R.t("reason_test"));
  tr.append(name, el("td", "col-offline" + (d.offline ? " is-offline" : ""), d.offline ? durationText(d.offline_s) : "—"),
    el("td", "col-refills", R.intText(d.refills)), el("td", "col-empty" + (d.ran_empty ? " is-empty" : ""),
      d.ran_empty ? R.t("yes") : "—"), el("td", "col-state", notes.join(", ")));
  return tr;
}

function renderDispensers(report) {
  const flagged = (report.dispensers || []).filter((d) => d.offline || d.ran_empty || d.mode === "test");
  const table = $("report-dispensers");
  $("report-dispensers-none").hidden = flagged.length > 0;
  table.hidden = !flagged.length;
  const head = el("tr");
  const heads = [["col_dispenser", "col-group"], ["col_offline_time"], ["col_refills"], ["col_ran_empty"],
    ["col_state", "col-state"]];
  heads.forEach(([key, className]) => {
    const th = el("th", className || null, R.t(key));
    th.scope = "col";
    head.appendChild(th);
  });
  const thead = el("thead");
  thead.appendChild(head);
  const body = el("tbody");
  flagged.forEach((d) => body.appendChild(dispenserRow(d)));
  table.replaceChildren(thead, body);
}

function render(report, kids) {
  // The report's week after the weeks before it: one answer shaped like /api/compliance's for the tables and chart.
  const weeks = Object.assign({}, report, { rows: (report.previous || []).concat([report.summary]) });
  const rows = weeks.rows;
  const row = rows[rows.length - 1];
  const names = new Map((report.dispensers || []).map((d) => [d.id, d.name]));
  const nameOf = (id) => names.get(id);
  setText($("report-week"), R.weekText(Object.assign({}, row, { start: FROM, end: TO, week: report.week })));
  setText($("report-generated"), R.t("report_generated", { when: fmt.dateTime.format(new Date()) }));
  $("report-partial").hidden = TO < TODAY;
  const late = report.late || {};
  $("report-late").hidden = !late.after_week;
  if (late.after_week) {
    setText($("report-late"), R.t("report_late", {
      count: fmt.int.format(late.after_week),
      when: fmt.dateTime.format(new Date(late.last_after_week)),
    }));
  }
  renderSummary(row, weeks, report);
  rateChart.draw($("trend-chart"), weeks, true);
  // Entries and gel are in the CSV: on A4 the rates and what they stand on.
  const opts = { answer: weeks, today: TODAY, nameOf: nameOf, oldestFirst: true, columns: COLUMNS };
  rateTables.fillPeriods($("report-weeks"), rows, Object.assign({ kind: "week", currentStart: FROM }, opts));
  rateTables.fillPeriods($("report-days"), report.days || [], Object.assign({ kind: "day" }, opts));
  rateTables.fillMissing($("census-missing"), [rows, report.days || []]);
  $("report-groups-section").hidden = !kids.length;
  if (kids.length) {
    rateTables.fillGroups($("report-groups"), kids.map((k, i) => ({
      group: children[i], answer: k, href: pageHref(report.week, null, children[i].id),
    })), nameOf, [R.weekShort(row), R.weekShort(rows[rows.length - 2] || row)]);
  }
  renderDispensers(report);
  renderCensusBy(report.census || []);
  document.documentElement.dataset.loaded = "1";
}

/** Who entered the week's census, and when: "Recensement saisi par nadia (7 jours, le 5 déc. 10:03)". */
function renderCensusBy(entries) {
  const byWho = new Map();
  entries.forEach((e) => {
    const seen = byWho.get(e.by) || { days: 0, last: "" };
    byWho.set(e.by, { days: seen.days + 1, last: e.at > seen.last ? e.at : seen.last });
  });
  const parts = [...byWho].map(([who, s]) => R.t("report_census_who", {
    who: who, days: fmt.int.format(s.days), when: fmt.dateTime.format(new Date(s.last)),
  }));
  $("report-census-by").hidden = !parts.length;
  setText($("report-census-by"), parts.length ? R.t("report_census_by", { list: parts.join(" ; ") }) : "");
}

async function load() {
  try {
    // A week going on is counted over its days so far by the server, in both answers.
    const [report, ...kids] = await Promise.all([
      R.getJSON("api/report?" + query({ group: GROUP, week: settings.week })),
      ...children.map((g) => R.compliance({ group: g.id, bucket: "week", from: shiftDay(FROM, -7), to: TO })),
    ]);
    render(report, kids);
  } catch (err) {
    $("compliance-error").hidden = false;
    setText($("compliance-error"), R.t("load_failed", { error: err.message }));
    document.documentElement.dataset.loaded = "error";
  }
}

function start() {
  $("report-prev").href = pageHref(isoWeek(shiftDay(FROM, -7)));
  $("report-next").href = pageHref(isoWeek(shiftDay(FROM, 7)));
  $("report-print").addEventListener("click", () => window.print());
  load();
}

start();

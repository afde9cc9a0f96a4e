/* The compliance view (`/conformite?group=ID`): the group against its target this week and last week, the weekly
 * trend, the days (an outage flagged, never read as zero use), the HAND-KISS reference beside the gel used per
 * patient-day, the subgroups side by side, and the census form (census.js). Live: a use pushed to the page
 * (`donnees_delta` / `donnees_utilisation`, through live.js) refreshes the figures, throttled; a slow poll catches
 * census typed elsewhere and the turn of the day. */
import { start as startCensus } from "./census.js";
import { rateChart } from "./ratechart.js";
import { rates as R } from "./rates.js";
import { rateTables } from "./ratetables.js";
import { $, dayKey, fmt, groupPicker, setText, shiftDay } from "../shared/format.js";
import { live } from "../shared/live.js";
import { settings } from "../shared/settings.js";
import { state } from "../shared/state.js";

const GROUP = settings.group || null;
const THROTTLE_MS = 3000;
const SLOW_POLL_MS = 60000;
const DAYS_SHOWN = 14;
const NAMES_WAIT_MS = 5000;
const tree = settings.groups || [];
const byId = new Map(tree.map((g) => [g.id, g]));
const children = tree.filter((g) => (g.parent && byId.has(g.parent) ? g.parent : null) === GROUP);
const page = { busy: false, again: false, answer: null, names: null };

/** Resolves once the dispensers' names are here (the first payload, asked for at load beside the figures), or after
 * NAMES_WAIT_MS without them: an offline cell names a dispenser, never shows its id for a moment first. */
function namesKnown() {
  if (!page.names) {
    page.names = new Promise((resolve) => {
      if (state.payload) resolve();
      state.onChange(() => resolve());
      setTimeout(resolve, NAMES_WAIT_MS);
    });
  }
  return page.names;
}

/** The site's date today: the server's at load, the browser's once it is later (a page left open overnight). */
function today() {
  const here = dayKey(new Date());
  return here > settings.today ? here : settings.today;
}

function nameOf(id) {
  const entry = state.entry(id);
  return entry ? entry.name : id;
}

/** This page for another group, keeping the language. */
function hrefFor(id, path) {
  const query = new URLSearchParams();
  if (id) query.set("group", id);
  const lang = new URLSearchParams(window.location.search).get("lang");
  if (lang) query.set("lang", lang);
  const text = query.toString();
  return (path || window.location.pathname) + (text ? "?" + text : "");
}

/** One headline card (this week, or last week): the rate against the target and what it stands on. */
function renderHeadline(prefix, row, answer) {
  const card = $(prefix);
  card.hidden = !row;
  if (!row) return;
  const lvl = R.level(row.compliance_pct, answer.target_pct);
  const rate = $(prefix + "-rate");
  R.setLevel(card, lvl);
  setText(rate, R.pctText(row.compliance_pct));
  rate.dataset.value = R.isNum(row.compliance_pct) ? String(row.compliance_pct) : "";
  setText($(prefix + "-week"), R.weekText(row));
  setText($(prefix + "-status"), R.isNum(row.compliance_pct) ? R.levelText(lvl, answer.target_pct) : R.whyNoRate(row, answer));
  setText($(prefix + "-basis"), [
    R.intText(row.hands) + " " + R.t("hands").toLowerCase(),
    R.intText(row.expected_opportunities) + " " + R.t("col_opps").toLowerCase(),
    R.intText(row.patient_days) + " " + R.t("col_patient_days").toLowerCase(),
  ].join(" · "));
  setText($(prefix + "-entry"), R.t("entry_rate_is",
    { pct: row.entries ? R.pctText(row.entry_rate_pct) : R.t("entry_rate_none") }));
  const flag = $(prefix + "-offline");
  flag.hidden = !row.offline;
  setText(flag, row.offline ? R.t("incomplete") + " — " + R.offlineText(row, nameOf) : "");
}

/** Gel per patient-day of the last complete week beside the HAND-KISS median for the ward's type. */
function renderReference(rows, answer) {
  const done = rows.filter((r) => !r.partial && R.isNum(r.ml_per_patient_day));
  const row = done[done.length - 1];
  const ref = answer.reference_ml_per_patient_day;
  const value = row ? row.ml_per_patient_day : null;
  const node = $("ml-per-patient-day");
  setText(node, R.mlText(value));
  node.dataset.value = R.isNum(value) ? String(value) : "";
  setText($("ml-week"), row ? R.weekText(row) : R.t("rate_none_census"));
  setText($("hand-kiss"), R.referenceText(answer));
  $("hand-kiss").dataset.value = R.isNum(ref) ? String(ref) : "";
  setText($("hand-kiss-ratio"), R.isNum(ref) && R.isNum(value)
    ? R.t("hk_ratio", { pct: fmt.pct.format((100 * value) / ref) + "\u00a0%" }) : "");
  const scale = Math.max(R.isNum(ref) ? ref : 0, R.isNum(value) ? value : 0) * 1.15 || 1;
  $("ref-fill").style.width = (R.isNum(value) ? (100 * value) / scale : 0) + "%"; // CSSOM, allowed by the CSP
  $("ref-mark").hidden = !R.isNum(ref);
  $("ref-fill").parentNode.hidden = !R.isNum(ref); // a bar with nothing to compare to says nothing
  if (R.isNum(ref)) $("ref-mark").style.left = (100 * ref) / scale + "%";
}

function render(weeks, days, kids) {
  const rows = weeks.rows || [];
  page.answer = weeks;
  setText($("target"), R.isNum(weeks.target_pct) ? R.t("target_is", { pct: R.targetText(weeks.target_pct) }) : R.t("target_none"));
  renderHeadline("this-week", rows[rows.length - 1], weeks);
  renderHeadline("last-week", rows.length > 1 ? rows[rows.length - 2] : null, weeks);
  renderReference(rows, weeks);
  rateChart.draw($("trend-chart"), weeks, false);
  const opts = { answer: weeks, today: today(), nameOf: nameOf };
  rateTables.fillPeriods($("compliance-weeks"), rows, Object.assign({ kind: "week" }, opts));
  rateTables.fillPeriods($("compliance-days"), days.rows || [], Object.assign({ kind: "day" }, opts));
  rateTables.fillMissing($("census-missing"), [rows, days.rows || []]);
  $("groups-panel").hidden = !kids.length;
  if (kids.length) {
    rateTables.fillGroups($("compliance-groups"), kids.map((k, i) => ({
      group: children[i], answer: k, href: hrefFor(children[i].id),
    })), nameOf);
  }
  const root = document.documentElement;
  root.dataset.loaded = String(Number(root.dataset.loaded || 0) + 1);
}

/** Ask the server again (one request set at a time; a call during one runs once more after it). */
async function refresh() {
  if (page.busy) {
    page.again = true;
    return;
  }
  page.busy = true;
  const day = today();
  try {
    const [weeks, days, ...kids] = await Promise.all([
      R.compliance({ group: GROUP, bucket: "week" }), // the server's default: 8 weeks up to today
      R.compliance({ group: GROUP, bucket: "day", from: shiftDay(day, 1 - DAYS_SHOWN) }),
      ...children.map((g) => R.compliance({ group: g.id, bucket: "week", from: shiftDay(R.mondayOf(day), -7) })),
    ]);
    await namesKnown();
    render(weeks, days, kids);
    $("compliance-error").hidden = true;
  } catch (err) {
    $("compliance-error").hidden = false;
    setText($("compliance-error"), R.t("load_failed", { error: err.message }));
  } finally {
    page.busy = false;
    if (page.again) {
      page.again = false;
      refresh();
    }
  }
}

function start() {
  startCensus(refresh); // a census saved refreshes the figures
  if (tree.length) groupPicker($("group-picker"), GROUP, hrefFor);
  const soon = R.throttled(refresh, THROTTLE_MS);
  state.onChange((change) => {
    if (change.totals || (change.changed && change.changed.size)) soon();
  });
  setInterval(refresh, SLOW_POLL_MS);
  refresh();
  live.start();
}

start();

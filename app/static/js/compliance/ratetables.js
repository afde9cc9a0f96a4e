/* Table rows of compliance figures, shared by the compliance view and the weekly report: one row per week or day
 * (same columns), one row per subgroup. A period with a dispenser offline says so in its own cell, and a use count
 * of zero during an outage reads "offline", never 0. */
import { rates as R } from "./rates.js";
import { el, fmt } from "../shared/format.js";

const cell = el; // a table cell: el(tag, className, text)

const PERIOD_COLUMNS = ["first", "patients", "opps", "hands", "compliance", "entries", "entry_rate", "gel", "ml_pd",
  "state"];
const HEADS = {
  patients: "col_patient_days", opps: "col_opps", hands: "hands", compliance: "col_compliance",
  entries: "col_entries", entry_rate: "col_entry_rate", gel: "col_gel_ml", ml_pd: "col_ml_pd", state: "col_state",
};


/** A table's head: one column heading per key of `columns`, reading `labelOf(key)`. */
function tableHead(columns, labelOf) {
  const tr = el("tr");
  columns.forEach((key) => {
    const th = cell("th", "col-" + key, labelOf(key));
    th.scope = "col";
    tr.appendChild(th);
  });
  const thead = el("thead");
  thead.appendChild(tr);
  return thead;
}

/** The head of a period table; `kind` is "week" or "day". */
function periodHead(kind, columns) {
  const labelOf = (key) => (key === "first" ? R.t(kind === "week" ? "col_week" : "col_day")
    : key === "patients" && kind === "day" ? R.t("col_patients") : R.t(HEADS[key]));
  return tableHead(columns || PERIOD_COLUMNS, labelOf);
}

/** "No census: Ward B" (or "No census: 36 wards", named once above the table) when the row lacks a census on one of
 * its days so far, else "". */
function censusText(row, answer) {
  const missing = R.censusMissingShort(row, "no_census_of", "no_census_count");
  if (missing) return missing;
  const soFar = typeof row.days_so_far === "number" ? row.days_so_far : row.days;
  return R.isNum(answer.opportunities_per_patient_day) && row.census_days < soFar ? R.t("no_census") : "";
}

/** What the state cell says, most important first: offline, future, in progress, census missing (said in
 * progress too: a rate missing for a census is never a blank). */
function stateOf(row, answer, today, nameOf) {
  if (row.no_dispensers_yet) return ["is-before", R.t("no_dispensers_yet")]; // its zeros are no figures
  if (row.offline) return ["is-offline", R.offlineText(row, nameOf)];
  if (today && row.start > today) return ["is-upcoming", R.t("upcoming")];
  const census = censusText(row, answer);
  if (row.partial || (today && (row.end || row.start) >= today)) {
    return ["is-partial", census ? R.t("in_progress") + " · " + census : R.t("in_progress")];
  }
  if (census) return ["is-nocensus", census];
  return ["is-complete", ""];
}

/** A count during an outage: "offline" instead of a zero that would read as no use. */
function useText(value, row, format) {
  if (row.no_dispensers_yet) return "—";
  if (row.offline && !value) return R.t("offline_zero");
  return format(value);
}

/** One row of a period table. `opts`: kind ("week"|"day"), answer (for the target), today, nameOf, current,
 * columns (default all). */
function periodRow(row, opts) {
  const tr = el("tr", "period");
  const upcoming = opts.today && row.start > opts.today;
  tr.dataset.start = row.start;
  if (row.week) tr.dataset.week = row.week;
  tr.dataset.offline = String(!!row.offline);
  tr.classList.toggle("is-current", !!opts.current);
  const lvl = R.level(row.compliance_pct, opts.answer.target_pct);
  const state = stateOf(row, opts.answer, opts.today, opts.nameOf);
  tr.classList.add(state[0]);
  const first = opts.kind === "week" ? R.weekShort(row) + " · " + R.dayMonthText(row.start) : R.dayText(row.start);
  const texts = {
    first: first,
    patients: R.intText(row.patient_days),
    opps: R.intText(row.expected_opportunities),
    hands: upcoming ? "" : useText(row.hands, row, R.intText),
    compliance: R.pctText(row.compliance_pct),
    entries: row.entries ? R.intText(row.entries) : "—",
    entry_rate: R.pctText(row.entry_rate_pct),
    gel: upcoming ? "" : useText(row.gel_ml, row, R.mlText),
    ml_pd: R.mlText(row.ml_per_patient_day),
    state: state[1],
  };
  (opts.columns || PERIOD_COLUMNS).forEach((key) => {
    const td = cell(key === "first" ? "th" : "td", "col-" + key, texts[key]);
    if (key === "first") td.scope = "row";
    td.dataset.col = key;
    if (key === "compliance") {
      R.setLevel(td, lvl);
      if (R.isNum(row.compliance_pct)) td.dataset.value = String(row.compliance_pct);
      else if (!upcoming) td.title = R.whyNoRate(row, opts.answer);
    }
    if (key === "hands" && row.offline && !row.hands) td.classList.add("is-offline-zero");
    if (key === "patients" && row.census_by) {
      td.title = R.t("census_entered", { who: row.census_by, when: fmt.dateTime.format(new Date(row.census_at)) });
    }
    if (key === "state" && row.offline) td.title = R.t("incomplete");
    tr.appendChild(td);
  });
  return tr;
}

/** Fill `table` with a head and one row per period, newest first (oldest first with `opts.oldestFirst`). */
function fillPeriods(table, rows, opts) {
  const body = el("tbody");
  (opts.oldestFirst ? rows : rows.slice().reverse()).forEach((row) => {
    body.appendChild(periodRow(row, Object.assign({}, opts, { current: opts.currentStart === row.start })));
  });
  table.replaceChildren(periodHead(opts.kind, opts.columns), body);
}

const GROUP_COLUMNS = ["group", "this_week", "last_week", "target", "entry_rate", "ml_pd", "state"];

/** `weeks`: the two week columns' headings (default "This week", "Last week"). */
function groupHead(weeks) {
  const labels = { group: R.t("col_group"), this_week: weeks ? weeks[0] : R.t("this_week"),
    last_week: weeks ? weeks[1] : R.t("last_week"), target: R.t("col_target"), entry_rate: R.t("col_entry_rate"),
    ml_pd: R.t("col_ml_pd"), state: R.t("col_state") };
  return tableHead(GROUP_COLUMNS, (key) => labels[key]);
}

function rateCell(row, answer) {
  const td = cell("td", "col-rate", row ? R.pctText(row.compliance_pct) : "—");
  R.setLevel(td, R.level(row && row.compliance_pct, answer.target_pct));
  if (row && R.isNum(row.compliance_pct)) td.dataset.value = String(row.compliance_pct);
  else if (row) td.title = R.whyNoRate(row, answer);
  return td;
}

/** One subgroup: this week (so far) and last week against its target; `href` links to its own view. The gel per
 * patient-day is the last complete week's. */
function groupRow(group, answer, href, nameOf) {
  const tr = el("tr", "subgroup-row");
  tr.dataset.group = group.id;
  const rows = answer.rows || [];
  const now = rows[rows.length - 1];
  const before = rows.length > 1 ? rows[rows.length - 2] : null;
  const name = el("th", "col-group");
  name.scope = "row";
  const link = el("a", null, group.name);
  link.href = href;
  name.appendChild(link);
  const flagged = rows.filter((r) => r.offline);
  const state = flagged.length ? R.offlineText({ offline_dispensers: Array.from(new Set(
    flagged.flatMap((r) => r.offline_dispensers))) }, nameOf) : "";
  const done = now && !now.partial ? now : before;
  const ml = done && R.isNum(done.ml_per_patient_day) ? R.mlText(done.ml_per_patient_day) : "—";
  const ref = R.isNum(answer.reference_ml_per_patient_day) ? " / " + R.mlText(answer.reference_ml_per_patient_day) : "";
  tr.append(name, rateCell(now, answer), rateCell(before, answer),
    cell("td", "col-target", R.targetText(answer.target_pct)),
    cell("td", "col-entry_rate", now ? R.pctText(now.entry_rate_pct) : "—"),
    cell("td", "col-ml_pd", ml + ref), cell("td", "col-state" + (state ? " is-offline" : ""), state));
  return tr;
}

/** Fill `table` with the subgroups: `items` = [{group, answer, href}]; `weeks` names the two week columns. */
function fillGroups(table, items, nameOf, weeks) {
  const body = el("tbody");
  items.forEach((item) => body.appendChild(groupRow(item.group, item.answer, item.href, nameOf)));
  table.replaceChildren(groupHead(weeks), body);
}

/** The wards without a census in any of `rowLists`, named once in `node` (hidden when the rows name them). */
function fillMissing(node, rowLists) {
  const text = R.censusMissingNote([].concat(...rowLists));
  node.textContent = text;
  node.hidden = !text;
}

export const rateTables = { fillPeriods: fillPeriods, fillGroups: fillGroups, fillMissing: fillMissing };

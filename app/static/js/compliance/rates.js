/* Compliance figures shared by the compliance view, the weekly report and the kiosk: the API, rate and date
 * formats, a rate against its target, the HAND-KISS reference. Rows are those of GET /api/compliance
 * (docs/compliance.md); a date there is a local calendar date ("2026-03-23"), never an instant. */
import { fill, fmt as numberFmt, shiftDay } from "../shared/format.js";
import { S, settings } from "../shared/settings.js";

const NEAR_PTS = 10; // within 10 points under the target: amber, not red
const FETCH_TIMEOUT_MS = 8000;
const LOCALE = settings.locale;
// Calendar dates are formatted in UTC: "2026-03-23" is that day wherever the browser is.
const utc = (extra) => new Intl.DateTimeFormat(LOCALE, Object.assign({ timeZone: "UTC" }, extra));
const fmt = {
  rate: new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 1, maximumFractionDigits: 1 }),
  ml: new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 }),
  day: utc({ weekday: "short", day: "numeric", month: "short" }),
  dayMonth: utc({ day: "numeric", month: "short" }),
  long: utc({ day: "numeric", month: "long", year: "numeric" }),
};

function t(key, values) {
  return fill(S[key] || key, values || {});
}

const isNum = (v) => typeof v === "number" && isFinite(v);

/** "63,2 %" or "—". */
function pctText(value) {
  return isNum(value) ? fmt.rate.format(value) + "\u00a0%" : "—";
}

/** A target as configured: "80 %", "82,5 %". */
function targetText(value) {
  return isNum(value) ? fmt.ml.format(value) + "\u00a0%" : "—";
}

function mlText(value) {
  return isNum(value) ? fmt.ml.format(value) + "\u00a0ml" : "—";
}

function intText(value) {
  return isNum(value) ? numberFmt.int.format(value) : "—";
}

/** "ok" (target met), "near" (under by at most NEAR_PTS), "below", "unset" (no target) or "none" (no rate). */
function level(value, target) {
  if (!isNum(value)) return "none";
  if (!isNum(target)) return "unset";
  if (value >= target) return "ok";
  return value >= target - NEAR_PTS ? "near" : "below";
}

/** Words beside the colour, so a printout in black and white says the same. */
function levelText(lvl, target) {
  if (lvl === "ok") return t("target_met") + " (" + targetText(target) + ")";
  if (lvl === "near" || lvl === "below") return t("target_missed") + " (" + targetText(target) + ")";
  if (lvl === "unset") return t("target_none");
  return "";
}

const GROUP_NAMES = new Map((settings.groups || []).map((g) => [g.id, g.name]));

/** The names of the groups whose census a row lacks (`census_missing`), or "" when none is named. */
function censusMissingNames(row) {
  return (row.census_missing || []).map((id) => GROUP_NAMES.get(id) || id).join(", ");
}

/** A row's missing census in a few words: the one ward's name, else how many wards (named once above the table,
 * by censusMissingNote: a site of 36 wards would repeat 36 names in every row). `key` takes {names}, `countKey` {n}. */
function censusMissingShort(row, key, countKey) {
  const missing = row.census_missing || [];
  if (!missing.length) return "";
  if (missing.length > 1) return t(countKey, { n: missing.length });
  // A ward's own page: its name is in the title already.
  return missing[0] === settings.group ? t(key.replace(/_of$/, "")) : t(key, { names: censusMissingNames(row) });
}

/** Every ward whose census some of `rows` lack, named once, or "" when rows name at most one ward each. */
function censusMissingNote(rows) {
  const ids = new Set();
  let many = false;
  rows.forEach((row) => {
    (row.census_missing || []).forEach((id) => ids.add(id));
    many = many || (row.census_missing || []).length > 1;
  });
  if (!many) return "";
  const names = Array.from(ids, (id) => GROUP_NAMES.get(id) || id).sort((a, b) => a.localeCompare(b, LOCALE));
  return t("census_missing_note", { n: ids.size, names: names.join(", ") });
}

/** Why a row has no compliance rate: the ward has no opportunities per patient-day, or a census is missing
 * (naming the wards that lack it: a site's rate waits for every ward's). */
function whyNoRate(row, answer) {
  if (isNum(row.compliance_pct) || row.days_so_far === 0) return "";
  if (row.no_dispensers_yet) return t("no_dispensers_yet");
  // First: a site has no opportunities of its own, its wards have.
  const missing = censusMissingShort(row, "rate_none_census_of", "rate_none_census_count");
  if (missing) return missing;
  return isNum(answer.opportunities_per_patient_day) ? t("rate_none_census") : t("rate_none_opps");
}

function wardTypeText(type) {
  return S["ward_" + type] || type || "";
}

/** "HAND-KISS reference (ICU): 137 ml" or why there is none. */
function referenceText(answer) {
  if (!isNum(answer.reference_ml_per_patient_day)) return t("hk_none");
  return t("hk_ref", { type: wardTypeText(answer.ward_type), ml: fmt.ml.format(answer.reference_ml_per_patient_day) });
}

function dateOf(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d));
}

const dayText = (iso) => fmt.day.format(dateOf(iso));
const dayMonthText = (iso) => fmt.dayMonth.format(dateOf(iso));
const longDayText = (iso) => fmt.long.format(dateOf(iso));

/** The ISO week number of a row ("2026-W13" -> 13). */
function weekNumber(row) {
  return Number(String(row.week || "").split("-W")[1]) || 0;
}

/** "S13" / "W13" for a chart axis. */
function weekShort(row) {
  return t("week_short", { n: weekNumber(row) });
}

/** "Semaine 13 (23 mars – 29 mars)". */
function weekText(row) {
  return t("week_label", { n: weekNumber(row), from: dayMonthText(row.start), to: dayMonthText(row.end || row.start) });
}

/** The Monday of the week of a date, as YYYY-MM-DD. */
function mondayOf(iso) {
  return shiftDay(iso, -((dateOf(iso).getUTCDay() + 6) % 7));
}

const NAMES_SHOWN = 3; // a site with many silent dispensers: the first names, then "+N" (the report lists them all)

/** Names of the dispensers a row flags offline (`nameOf(id)` gives a name, else the id is shown). */
function offlineText(row, nameOf) {
  const names = (row.offline_dispensers || []).map((id) => (nameOf && nameOf(id)) || id);
  const shown = names.slice(0, NAMES_SHOWN).join(", ") + (names.length > NAMES_SHOWN ? " +" + (names.length - NAMES_SHOWN) : "");
  return t("offline_flag", { names: shown });
}

/** GET a JSON route of this server; an error carries the server's message. */
async function getJSON(path) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const resp = await fetch(new URL(path, window.location.href).toString(),
      { cache: "no-store", credentials: "same-origin", signal: controller.signal });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((body && body.error) || "HTTP " + resp.status);
    return body;
  } finally {
    clearTimeout(timer);
  }
}

/** GET /api/compliance with these parameters (null values left out). */
function compliance(params) {
  const query = new URLSearchParams();
  Object.keys(params).forEach((key) => {
    if (params[key] !== null && params[key] !== undefined) query.set(key, String(params[key]));
  });
  return getJSON("api/compliance?" + query.toString());
}

/** Run `fn` at most once per `wait` ms (the last call is never lost). */
function throttled(fn, wait) {
  let last = 0;
  let timer = null;
  return function () {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, Math.max(0, last + wait - Date.now()));
  };
}

/** Put `lvl` on a node as class `rate-<lvl>` (and nothing else of the kind). */
function setLevel(node, lvl) {
  ["ok", "near", "below", "unset", "none"].forEach((k) => node.classList.toggle("rate-" + k, k === lvl));
}

export const rates = {
  t: t, isNum: isNum, pctText: pctText, targetText: targetText, mlText: mlText, intText: intText, level: level, levelText: levelText,
  whyNoRate: whyNoRate, censusMissingNames: censusMissingNames, censusMissingShort: censusMissingShort,
  censusMissingNote: censusMissingNote, wardTypeText: wardTypeText, referenceText: referenceText, dayText: dayText,
  dayMonthText: dayMonthText, longDayText: longDayText, weekShort: weekShort, weekText: weekText,
  weekNumber: weekNumber, mondayOf: mondayOf, offlineText: offlineText, getJSON: getJSON, compliance: compliance,
  throttled: throttled, setLevel: setLevel,
};

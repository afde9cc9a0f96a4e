/* Shared helpers: number and date formats in the page's language, DOM helpers (textContent only, never innerHTML). */
import { S, settings } from "./settings.js";

const LOCALE = settings.locale;
const TZ = settings.timezone ? { timeZone: settings.timezone } : {};
const HOUR = settings.lang === "fr" ? "2-digit" : "numeric"; // 08:05 in French, 8:05 AM in English
const opts = (extra) => Object.assign(extra, TZ);

const fmt = {
  one: new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 }),
  two: new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
  int: new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 }),
  pct: new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 }),
  clock: new Intl.DateTimeFormat(LOCALE, opts({ hour: HOUR, minute: "2-digit", second: "2-digit" })),
  hm: new Intl.DateTimeFormat(LOCALE, opts({ hour: HOUR, minute: "2-digit" })),
  hour: new Intl.DateTimeFormat(LOCALE, opts({ hour: "numeric" })),
  hourParts: new Intl.DateTimeFormat(LOCALE, opts({ hour: "2-digit", hourCycle: "h23" })),
  weekday: new Intl.DateTimeFormat(LOCALE, opts({ weekday: "long" })),
  dayMonth: new Intl.DateTimeFormat(LOCALE, opts({ day: "numeric", month: "short" })),
  shortDay: new Intl.DateTimeFormat(LOCALE, opts({ weekday: "short", day: "numeric" })),
  dateTime: new Intl.DateTimeFormat(LOCALE, opts({ day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" })),
  isoDay: new Intl.DateTimeFormat("en-CA", opts({ year: "numeric", month: "2-digit", day: "2-digit" })),
};

function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m));
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

function levelText(entry) {
  return fmt.pct.format(levelOf(entry)) + "\u00a0%";
}

function levelOf(entry) {
  return Math.max(0, Math.min(100, Number(entry.level_pct) || 0));
}

// The names of the chosen group and its parents: a group view does not repeat them beside every dispenser.
const chosenChain = (function () {
  const byId = new Map((settings.groups || []).map((g) => [g.id, g]));
  const names = [];
  let node = byId.get(settings.group);
  while (node && names.length <= byId.size) {
    names.unshift(node.name);
    node = node.parent ? byId.get(node.parent) : null;
  }
  return names;
})();

/** A dispenser's group path below the group on screen (at least its own group), as a list of names. */
function pathParts(entry) {
  const path = entry.path || [];
  let skip = 0;
  while (skip < chosenChain.length && skip < path.length - 1 && path[skip] === chosenChain[skip]) skip += 1;
  return path.slice(skip);
}

/** The group path shown beside a name ("Étage 2 › Cardiologie"); empty without groups. */
function pathText(entry) {
  return pathParts(entry).join(" \u203a ");
}

/** Fill the group `<select>` (the dashboard's and the compliance view's): "all dispensers", then the declared groups
 * indented under their parents, `current` selected; choosing one opens `hrefFor(id)`. */
function groupPicker(picker, current, hrefFor) {
  if (!picker) return;
  const tree = settings.groups || [];
  const ids = new Set(tree.map((g) => g.id));
  const under = (parent) => tree.filter((g) => (g.parent && ids.has(g.parent) ? g.parent : null) === parent);
  const all = el("option", null, S.all_dispensers);
  all.value = "";
  const options = [all];
  const walk = (parent, depth) => under(parent).forEach((g) => {
    const option = el("option", null, "\u2003".repeat(depth) + g.name);
    option.value = g.id;
    option.selected = g.id === current;
    options.push(option);
    walk(g.id, depth + 1);
  });
  walk(null, 0);
  picker.replaceChildren(...options);
  picker.addEventListener("change", () => window.location.assign(hrefFor(picker.value)));
}

/** "1 alerte", "3 alertes": the `key_1` string for one, `key_n` otherwise. */
function count(key, n) {
  return fill(S[key + (n === 1 ? "_1" : "_n")] || "{n}", { n: fmt.int.format(n) });
}

// ---------- DOM helpers ----------

const $ = (id) => document.getElementById(id);

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
  const text = number + "\u00a0" + unit;
  if (node.textContent === text) return;
  node.replaceChildren(document.createTextNode(number + "\u00a0"), el("span", "unit", unit));
}

/** Run `fn` once on the next animation frame however often it is asked for: DOM writes batched per frame. */
function perFrame(fn) {
  let queued = false;
  return function () {
    if (queued) return;
    queued = true;
    window.requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

export { fmt, fill, gelParts, gelText, dayKey, shiftDay, hourText, whenText, agoText, stampText, levelOf, levelText, pathText, pathParts, count, groupPicker, $, el, setText, setAmount, perFrame };

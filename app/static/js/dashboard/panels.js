/* The summary panels: totals, last update, the alerts banner and the "needs attention" list. */
import { $, agoText, el, fill, fmt, gelParts, levelText, pathParts, setAmount, setText, stampText, whenText } from "../shared/format.js";
import { KIOSK, S } from "../shared/settings.js";
import { state } from "../shared/state.js";

// The banner names a few; the attention list below (and the tiles) show the rest. On a wall, both are then cut
// to what fits their box (fitBanner, fitToBox), the rest counted in "+N autres".
const panels = { alertCap: KIOSK ? 16 : 8, attentionCap: KIOSK ? 40 : 12 };

function t(key, values) {
  return fill(S[key] || key, values || {});
}

function renderTotals() {
  const payload = state.payload;
  const gel = $("gel-used");
  const parts = gelParts(payload.gel_used);
  setAmount(gel, parts[0], parts[1]);
  gel.dataset.value = String(payload.gel_used);
  const hands = $("hands-detected");
  setText(hands, fmt.int.format(payload.hands_detected));
  hands.dataset.value = String(payload.hands_detected);
  const updated = $("last-update");
  if (payload.updated_at) {
    setText(updated, stampText(payload.updated_at));
    updated.dateTime = payload.updated_at;
  }
}

function alertItem(alert) {
  const item = el("li", "alert alert-" + alert.kind);
  item.dataset.kind = alert.kind;
  item.dataset.dispenser = alert.dispenser;
  item.appendChild(el("span", "alert-icon"));
  const template = S["alert_" + alert.kind] || "{name}: " + alert.kind;
  item.appendChild(el("span", "alert-text", fill(template, { name: alert.name })));
  return item;
}

const KINDS = ["offline", "low", "no_use"];

/** Up to `cap` alerts taken in turn from each kind, so a kind with few alerts is not buried under another. */
function interleaved(alerts, cap) {
  const queues = KINDS.map((kind) => alerts.filter((a) => a.kind === kind));
  const picked = [];
  for (let i = 0; picked.length < cap && queues.some((q) => i < q.length); i += 1) {
    queues.forEach((q) => { if (i < q.length && picked.length < cap) picked.push(q[i]); });
  }
  return picked;
}

/** Kiosk: drop names from the end until the last item (the "+N" one when any is dropped) lies inside the banner's
 * box, which shows two lines: no name is cut off silently. A few layout reads, only when the alerts changed. */
function fitBanner(list, names, total) {
  const more = el("li", "alert alert-more");
  let shown = names.length;
  const count = () => {
    more.hidden = shown === total;
    setText(more, t("more", { n: total - shown }));
  };
  count();
  list.append(...names, more);
  const box = $("alerts");
  const bottom = box.getBoundingClientRect().bottom - parseFloat(getComputedStyle(box).paddingBottom) + 0.5;
  while (shown > 0 && (more.hidden ? names[shown - 1] : more).getBoundingClientRect().bottom > bottom) {
    shown -= 1;
    names[shown].remove();
    count();
  }
}

/** Worst first; past the cap (on a wall, past two or more alerts) a count per kind first, names of each kind in
 * turn, then "+N": a wall screen never overflows however many alerts there are, and every kind stays on screen. */
function renderAlerts() {
  const alerts = state.payload.alerts || [];
  const cap = panels.alertCap;
  const list = $("alert-list");
  $("alerts").hidden = alerts.length === 0;
  if (alerts.length <= cap && !(KIOSK && alerts.length > 1)) {
    list.replaceChildren(...alerts.map(alertItem));
    return;
  }
  const chips = [];
  KINDS.forEach((kind) => {
    const n = alerts.filter((a) => a.kind === kind).length;
    if (!n) return;
    const chip = el("li", "alert alert-count alert-" + kind);
    chip.dataset.kind = kind;
    chip.append(el("span", "alert-icon"), el("span", "alert-text", t("count_" + kind, { n: n })));
    chips.push(chip);
  });
  const names = interleaved(alerts, cap).map(alertItem);
  list.replaceChildren(...chips);
  if (KIOSK) fitBanner(list, names, alerts.length);
  else list.append(...names, el("li", "alert alert-more", t("more", { n: alerts.length - cap })));
}

function reasonText(item) {
  const entry = item.entry;
  switch (item.why.reason) {
    case "offline":
      return entry.last_seen ? S.offline + " · " + fill(S.seen, { when: agoText(entry.last_seen) }) : S.offline;
    case "empty":
      return t("reason_empty");
    case "emptying":
      return fill(S.empty_at, { when: whenText(entry.empty_at) }) + " · " + levelText(entry);
    case "low":
      return S.low + " · " + levelText(entry);
    default:
      return t("reason_no_use");
  }
}

function attentionItem(item) {
  const li = el("li", "attention-item attention-" + item.why.reason);
  li.dataset.id = item.entry.id;
  li.dataset.reason = item.why.reason;
  const who = el("span", "attention-who");
  who.append(el("span", "attention-name", item.entry.name));
  const path = pathParts(item.entry).slice(-2).join(" \u203a "); // the specific end: ward, floor
  if (path) who.append(el("span", "attention-path", path));
  li.append(el("span", "attention-mark"), who, el("span", "attention-reason", reasonText(item)));
  return li;
}

let attentionKey = "";

/** Kiosk: drop items from the end until the list fits its box (a long name takes more than one line), the
 * dropped ones counted in the "+N" line. A few layout reads, only when the list changed. */
function fitToBox(list, items, total) {
  const more = el("li", "attention-more");
  let shown = items.length;
  const count = () => {
    more.hidden = shown === total;
    setText(more, t("more", { n: total - shown }));
  };
  count();
  list.replaceChildren(...items, more);
  const bottom = list.getBoundingClientRect().bottom + 0.5;
  while (shown > 0 && (more.hidden ? items[shown - 1] : more).getBoundingClientRect().bottom > bottom) {
    shown -= 1;
    items[shown].remove();
    count();
  }
}

/** The most urgent dispensers (offline, empty or emptying soonest, low, no use), as many as fit. */
function renderAttention(force) {
  const box = $("attention");
  if (!box) return;
  const all = state.attention();
  const shown = all.slice(0, panels.attentionCap);
  const key = all.length + "|" + shown.map((a) => a.entry.id + ":" + reasonText(a)).join("|");
  if (!force && key === attentionKey) return;
  attentionKey = key;
  const list = $("attention-list");
  const items = shown.map(attentionItem);
  if (!all.length) list.replaceChildren(el("li", "attention-none", t("attention_none")));
  else if (KIOSK) fitToBox(list, items, all.length);
  else {
    if (all.length > shown.length) items.push(el("li", "attention-more", t("more", { n: all.length - shown.length })));
    list.replaceChildren(...items);
  }
  setText($("attention-count"), all.length ? String(all.length) : "");
  box.dataset.count = String(all.length);
}

/** Redraw what the accumulated change touched. */
function render(change) {
  if (!state.payload) return;
  if (change.totals || change.full) renderTotals();
  if (change.alerts || change.full) renderAlerts();
  renderAttention(!!change.tick);
}

/** Kiosk: the screen or the banner's room changed size: cut both lists to their boxes again. */
function refit() {
  if (state.payload) renderAlerts();
  renderAttention(true);
}

const panelsApi = { render: render, refitAttention: refit, t: t };

export { panelsApi as panels };

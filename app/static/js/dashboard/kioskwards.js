/* The wall display of a whole site or building shows its wards, not hundreds of pages of dispensers: past
 * MAX_PAGES pages of dispenser tiles, one tile per ward (a group with no subgroup) with its worst alert, how many
 * of its dispensers need attention, and its use. The dispensers that need attention are still named, one by one,
 * in the banner and the attention list; `?kiosk=1&group=WARD` shows that ward's dispensers. */
import { panels } from "./panels.js";
import { fill, fmt, gelText, setText } from "../shared/format.js";
import { S, settings } from "../shared/settings.js";
import { state } from "../shared/state.js";

// Three pages of dispenser tiles turn in 30 s (page_s = 10) and each tile is on screen a third of the time: past
// that, a dispenser's trouble could go unseen for longer than the banner shows it, and a site of 10,000 would
// take an hour a cycle. Wards keep the cycle to a few pages (500 wards of 20: 17 pages, under 3 minutes).
const MAX_PAGES = 3;
const KINDS = ["offline", "low", "no_use"]; // worst first, as the alert list
const tree = settings.groups || [];
const byId = new Map(tree.map((g) => [g.id, g]));
const hasChildren = new Set(tree.map((g) => g.parent).filter(Boolean));

/** True when `pages` of dispenser tiles are too many for a wall and the view holds more than one ward. */
function wanted(pages, wards) {
  return pages > MAX_PAGES && wards.length > 1;
}

/** The wards (groups with no subgroup) that hold one of these dispensers, in the config's order. */
function wardsOf(ids) {
  const holding = new Set(ids.map((id) => (state.entry(id) || {}).group).filter(Boolean));
  return tree.filter((g) => !hasChildren.has(g.id) && holding.has(g.id)).map((g) => g.id);
}

/** The ward a dispenser's changes redraw. */
function wardOf(id) {
  const entry = state.entry(id);
  return entry ? entry.group : null;
}

/** Per ward: its dispensers that need attention and the worst kind among them, from the alert list. */
function wardAlerts() {
  const out = new Map();
  ((state.payload && state.payload.alerts) || []).forEach((a) => {
    const ward = wardOf(a.dispenser);
    if (!ward) return;
    const seen = out.get(ward) || { ids: new Set(), worst: KINDS.length };
    seen.ids.add(a.dispenser);
    seen.worst = Math.min(seen.worst, Math.max(0, KINDS.indexOf(a.kind)));
    out.set(ward, seen);
  });
  return out;
}

/** The ward's place below what the whole screen is about: "Bâtiment A › Étage 2". */
function wardPath(id) {
  const names = [];
  let node = byId.get(byId.get(id).parent);
  while (node && node.id !== settings.group && names.length < tree.length) {
    names.unshift(node.name);
    node = node.parent ? byId.get(node.parent) : null;
  }
  return names.slice(-2).join(" \u203a ");
}

/** Draw one ward on a tile built by the kiosk (name, path, bar, level, badge, detail). */
function renderWard(tile, id, alerts) {
  const p = tile._parts;
  const group = state.group(id) || { dispensers: 0, hands_detected: 0, gel_used: 0 };
  const seen = alerts.get(id);
  const kind = seen ? KINDS[seen.worst] : null;
  const total = Math.max(group.dispensers, seen ? seen.ids.size : 0);
  if (tile.dataset.id !== id) tile.dataset.id = id;
  if (tile.dataset.ward !== "1") tile.dataset.ward = "1"; // writes only what changed: a redraw touches nothing else
  tile.classList.toggle("is-offline", kind === "offline");
  tile.classList.toggle("is-low", kind === "low");
  tile.classList.toggle("is-idle", kind === "no_use");
  if (tile.classList.contains("is-test")) tile.classList.remove("is-test");
  setText(p.name, byId.get(id).name);
  if (p.name.classList.contains("name-long")) p.name.classList.remove("name-long");
  setText(p.path, wardPath(id));
  const fine = total ? Math.round((100 * (total - (seen ? seen.ids.size : 0))) / total) : 100;
  if (p.fill.style.width !== fine + "%") p.fill.style.width = fine + "%";
  setText(p.level, seen ? fill(S.ward_alerting, { n: seen.ids.size }) : S.ward_ok);
  setText(p.badge, kind === "offline" ? S.offline : kind === "low" ? S.low : kind === "no_use" ? panels.t("reason_no_use") : "");
  setText(p.detail, [fill(S.ward_dispensers, { n: fmt.int.format(total) }),
    fill(S.ward_hands, { n: fmt.int.format(group.hands_detected) }), gelText(group.gel_used)].join(" · "));
}

/** The name a ward tile must fit (the kiosk sizes the name box for the longest). */
function wardName(id) {
  return (byId.get(id) || { name: "" }).name;
}

export const wards = { wanted: wanted, of: wardsOf, wardOf: wardOf, alerts: wardAlerts, render: renderWard,
  name: wardName };

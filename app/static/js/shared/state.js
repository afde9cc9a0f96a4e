/* The figures on screen: the last full payload, merged with `donnees_delta` events (contract in docs/dashboard.md),
 * plus what the views derive from it (sorted order, "needs attention" ranking). Views subscribe to changes. */
import { levelOf, pathText } from "./format.js";
import { settings } from "./settings.js";

const DAY_MS = 86400000;
const collator = new Intl.Collator(settings.locale, { numeric: true, sensitivity: "base" });

const state = {
  payload: null, // totals, alerts, groups, updated_at of the last payload or delta
  seq: null, // the server's change sequence the figures are at (null: a server without deltas)
  byId: new Map(), // id -> entry
  signatures: new Map(), // id -> JSON of the entry, to find what a full payload changed
  groups: new Map(), // id -> live group figures
  alertsKey: "",
  membership: 0, // bumps when dispensers are added or removed
  listeners: [],
  sortedCache: null,
  sortedStale: false, // entries changed since the order was cached: the cached objects are old ones
  attentionCache: null,
};

function emit(change) {
  // Re-sorting 1,000 names per use would cost more than the rest of a delta: only when names or paths moved.
  if (change.membership || change.renamed) state.sortedCache = null;
  else if (change.changed && change.changed.size) state.sortedStale = true; // same order, newer entry objects
  state.attentionCache = null;
  state.listeners.forEach((fn) => fn(change));
}

function onChange(fn) {
  state.listeners.push(fn);
}

function takeAlerts(alerts) {
  const key = JSON.stringify(alerts || []);
  const changed = key !== state.alertsKey;
  state.alertsKey = key;
  return changed;
}

function takeGroups(groups) {
  (groups || []).forEach((g) => state.groups.set(g.id, g));
  return !!(groups && groups.length);
}

function takeTotals(source) {
  const p = state.payload || {};
  const changed = p.gel_used !== source.gel_used || p.hands_detected !== source.hands_detected
    || p.updated_at !== source.updated_at;
  state.payload = Object.assign({}, p, {
    gel_used: source.gel_used, hands_detected: source.hands_detected, updated_at: source.updated_at,
    alerts: Array.isArray(source.alerts) ? source.alerts : p.alerts || [],
  });
  return changed;
}

/** A whole payload (GET, poll, or `donnees_utilisation`): false when it is older than what is on screen. */
function applyFull(payload) {
  if (!payload || typeof payload !== "object" || !Array.isArray(payload.dispensers)) return false;
  const current = state.payload;
  if (state.seq !== null && typeof payload.seq === "number" && payload.seq < state.seq) return false;
  if (current && payload.updated_at && current.updated_at && payload.updated_at < current.updated_at
      && typeof payload.seq !== "number") return false;
  const changed = new Set();
  const seen = new Set();
  let membership = false;
  let renamed = false;
  payload.dispensers.forEach((entry) => {
    seen.add(entry.id);
    const signature = JSON.stringify(entry);
    if (state.signatures.get(entry.id) === signature) return;
    const old = state.byId.get(entry.id);
    if (!old) membership = true;
    else if (sortKey(old) !== sortKey(entry)) renamed = true;
    state.signatures.set(entry.id, signature);
    state.byId.set(entry.id, entry);
    changed.add(entry.id);
  });
  Array.from(state.byId.keys()).forEach((id) => {
    if (seen.has(id)) return;
    state.byId.delete(id);
    state.signatures.delete(id);
    membership = true;
  });
  if (membership) state.membership += 1;
  state.seq = typeof payload.seq === "number" ? payload.seq : null;
  state.groups.clear();
  takeGroups(payload.groups);
  const alerts = takeAlerts(payload.alerts);
  const totals = takeTotals(payload);
  emit({ full: true, changed: changed, membership: membership, renamed: renamed, alerts: alerts, totals: totals,
    groups: true });
  return true;
}

/** A `donnees_delta`: "applied", "old" (already have it) or "gap" (the caller re-fetches the GET).
 * A delta carries whole entries and totals, not increments, so one whose base is at or below our seq is safe to
 * apply (a group room's base is that room's last delta, often below a seq read from the GET); a base above our
 * seq means a delta was missed. */
function applyDelta(delta) {
  if (!delta || typeof delta.seq !== "number") return "old";
  if (state.seq !== null && delta.seq <= state.seq) return "old";
  if (state.seq === null || typeof delta.base !== "number" || delta.base > state.seq) return "gap";
  const changed = new Set();
  let membership = false;
  let renamed = false;
  (delta.dispensers || []).forEach((entry) => {
    const old = state.byId.get(entry.id);
    if (!old) membership = true;
    else if (sortKey(old) !== sortKey(entry)) renamed = true;
    state.byId.set(entry.id, entry);
    state.signatures.set(entry.id, JSON.stringify(entry));
    changed.add(entry.id);
  });
  (delta.removed || []).forEach((id) => {
    if (state.byId.delete(id)) membership = true;
    state.signatures.delete(id);
  });
  if (membership) state.membership += 1;
  state.seq = delta.seq;
  const groups = takeGroups(delta.groups);
  // Absent: the alerts did not move. Present: what was raised and resolved, applied to the list held.
  const list = delta.alerts_added || delta.alerts_removed ? movedAlerts(delta) : null;
  const alerts = list !== null && takeAlerts(list);
  const totals = takeTotals(list !== null ? Object.assign({}, delta, { alerts: list }) : delta);
  emit({ full: false, changed: changed, membership: membership, renamed: renamed, alerts: alerts, totals: totals,
    groups: groups });
  return "applied";
}

const ALERT_ORDER = ["offline", "low", "no_use"]; // worst first, as the server lists them

/** The alert list after a delta: the resolved and re-raised kinds of its dispensers dropped, the raised added,
 * worst kind first then in the fleet's order. */
function movedAlerts(delta) {
  const key = (a) => a.dispenser + "\u0000" + a.kind;
  const gone = new Set((delta.alerts_removed || []).concat(delta.alerts_added || []).map(key));
  const order = new Map(Array.from(state.byId.keys(), (id, i) => [id, i]));
  const rank = (a) => [ALERT_ORDER.indexOf(a.kind), order.has(a.dispenser) ? order.get(a.dispenser) : 1e9];
  const list = ((state.payload && state.payload.alerts) || []).filter((a) => !gone.has(key(a)))
    .concat(delta.alerts_added || []);
  return list.sort((a, b) => {
    const [ka, oa] = rank(a);
    const [kb, ob] = rank(b);
    return ka - kb || oa - ob;
  });
}

function sortKey(entry) {
  return pathText(entry) + "\u0001" + entry.name + "\u0001" + entry.id;
}

/** Every dispenser in a stable order: group path, then name (numbers compared as numbers: 2 before 10). */
function sorted() {
  if (!state.sortedCache) {
    state.sortedCache = Array.from(state.byId.values()).sort((a, b) => collator.compare(sortKey(a), sortKey(b)));
  } else if (state.sortedStale) {
    // A view building a node (table switched on, "show more", search) must get the figures as they are now.
    state.sortedCache = state.sortedCache.map((e) => state.byId.get(e.id));
  }
  state.sortedStale = false;
  return state.sortedCache;
}

/** Why an entry needs attention, most urgent first: 0 offline, 1 empty or emptying within a day, 2 low,
 * 3 no use; null when it does not. */
function attentionOf(entry, now) {
  if (!entry.online) return { rank: 0, reason: "offline" };
  const level = levelOf(entry);
  const emptyIn = entry.empty_at ? new Date(entry.empty_at).getTime() - now : Infinity;
  if (level <= 0) return { rank: 1, reason: "empty", soon: -1 };
  if (emptyIn < DAY_MS) return { rank: 1, reason: "emptying", soon: emptyIn };
  if (entry.low) return { rank: 2, reason: "low" };
  if (entry.no_use) return { rank: 3, reason: "no_use" };
  return null;
}

function byUrgency(a, b) {
  if (a.why.rank !== b.why.rank) return a.why.rank - b.why.rank;
  if (a.why.rank === 1 && a.why.soon !== b.why.soon) return a.why.soon - b.why.soon;
  if (a.why.rank === 2) {
    const d = levelOf(a.entry) - levelOf(b.entry);
    if (d) return d;
  }
  return collator.compare(sortKey(a.entry), sortKey(b.entry));
}

/** [{entry, why}] of the dispensers needing attention, most urgent first. */
function attention() {
  if (!state.attentionCache) {
    const now = Date.now();
    const found = [];
    state.byId.forEach((entry) => {
      const why = attentionOf(entry, now);
      if (why) found.push({ entry: entry, why: why });
    });
    state.attentionCache = found.sort(byUrgency);
  }
  return state.attentionCache;
}

/** Attention first (most urgent first), then the others in the stable order. */
function attentionFirst() {
  const first = attention().map((a) => a.entry);
  const flagged = new Set(first.map((e) => e.id));
  return first.concat(sorted().filter((e) => !flagged.has(e.id)));
}

function totalEvents() {
  let sum = 0;
  state.byId.forEach((d) => { sum += d.events || 0; });
  return sum;
}

const stateApi = {
  applyFull: applyFull,
  applyDelta: applyDelta,
  onChange: onChange,
  sorted: sorted,
  attention: attention,
  attentionFirst: attentionFirst,
  totalEvents: totalEvents,
  get payload() { return state.payload; },
  get seq() { return state.seq; },
  get membership() { return state.membership; },
  entry: (id) => state.byId.get(id),
  group: (id) => state.groups.get(id),
  count: () => state.byId.size,
  collator: collator,
};

export { stateApi as state };

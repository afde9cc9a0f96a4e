/* The desktop list: one card per dispenser or a dense table, "needs attention" first, search by name or group.
 * Only the cards whose figures changed are redrawn; the list is re-ordered only when the order changed. */
import { panels } from "./panels.js";
import { requestRender } from "./render.js";
import { $, agoText, el, fill, fmt, gelParts, gelText, levelOf, levelText, pathText, setAmount, setText, stampText, whenText } from "../shared/format.js";
import { S } from "../shared/settings.js";
import { state } from "../shared/state.js";

// A desk shows the most urgent first; past a few hundred, drawing every card on each use would cost more than
// it tells (a thousand cards re-ordered on every use freeze the page): more on demand, or search, or a group.
const STEP = 150;
const view = { mode: "cards", query: "", order: "", cards: new Map(), rows: new Map(), limit: STEP };

function fold(text) {
  return String(text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

function matches(entry) {
  if (!view.query) return true;
  return fold(entry.name + " " + entry.id + " " + pathText(entry)).includes(view.query);
}

function badgeOf(entry) {
  if (entry.mode === "test") return ["badge-test", S.mode_test]; // commissioning: its presses count nowhere
  if (!entry.online) return ["badge-offline", S.offline];
  if (entry.low) return ["badge-low", S.low];
  return ["badge-online", S.online];
}

function seenText(entry) {
  let seen = entry.last_seen ? fill(S.seen, { when: agoText(entry.last_seen) }) : S.never_seen;
  if (!entry.online && entry.last_seen) seen += " · " + S.stale;
  return seen;
}

function emptyText(entry) {
  return entry.empty_at ? fill(S.empty_at, { when: whenText(entry.empty_at) }) : S.empty_unknown;
}

function buildCard(entry) {
  const card = el("article", "dispenser");
  card.dataset.id = entry.id;
  const p = {
    name: el("h3", "dispenser-name"), path: el("p", "dispenser-path"), badge: el("span", "badge"),
    gauge: el("div", "gauge"), fill: el("div", "gauge-fill"), level: el("span", "gauge-label"),
    gel: el("dd", "figure-gel"), hands: el("dd", "figure-hands"), doses: el("dd", "figure-doses"),
    empty: el("span", "dispenser-empty"), seen: el("span", "dispenser-seen"),
  };
  const title = el("div", "dispenser-title");
  title.append(p.name, p.path);
  const head = el("header", "dispenser-head");
  head.append(title, p.badge);
  p.gauge.setAttribute("role", "meter");
  p.gauge.setAttribute("aria-valuemin", "0");
  p.gauge.setAttribute("aria-valuemax", "100");
  p.gauge.setAttribute("aria-label", S.level);
  p.gauge.append(p.fill, p.level);
  const figures = el("dl", "dispenser-figures");
  [[S.gel, p.gel], [S.hands, p.hands], [S.doses, p.doses]].forEach(([label, dd]) => {
    const row = el("div", "figure");
    row.append(el("dt", null, label), dd);
    figures.appendChild(row);
  });
  const body = el("div", "dispenser-body");
  body.append(p.gauge, figures);
  const foot = el("footer", "dispenser-foot");
  foot.append(p.empty, p.seen);
  card.append(head, body, foot);
  card._parts = p;
  return card;
}

/** What a card and a table row show alike: the state classes, the name, the group path with the id, the counts. */
function renderShared(node, parts, entry) {
  node.classList.toggle("is-offline", !entry.online);
  node.classList.toggle("is-low", !!entry.low);
  node.classList.toggle("is-idle", !!entry.no_use);
  node.classList.toggle("is-test", entry.mode === "test");
  node.title = entry.mode === "test" ? S.mode_test_hint : "";
  setText(parts.name, entry.name);
  const path = pathText(entry);
  setText(parts.path, path ? path + " · " + entry.id : entry.id);
  setText(parts.hands, fmt.int.format(entry.hands_detected));
  setText(parts.doses, fmt.int.format(entry.events));
}

function renderCard(card, entry) {
  const p = card._parts;
  renderShared(card, p, entry);
  const badge = badgeOf(entry);
  setText(p.badge, badge[1]);
  p.badge.className = "badge " + badge[0];
  const level = levelOf(entry);
  p.fill.style.height = level + "%"; // CSSOM: allowed by the style-src CSP, unlike a style attribute
  setText(p.level, levelText(entry));
  p.gauge.setAttribute("aria-valuenow", String(level));
  const gel = gelParts(entry.gel_used);
  setAmount(p.gel, gel[0], gel[1]);
  setText(p.empty, emptyText(entry));
  setText(p.seen, seenText(entry));
  if (entry.last_seen) p.seen.title = stampText(entry.last_seen);
}

function buildRow(entry) {
  const row = el("tr", "row");
  row.dataset.id = entry.id;
  const cells = {};
  ["name", "level", "empty", "gel", "hands", "doses", "status", "seen"].forEach((key) => {
    cells[key] = el(key === "name" ? "th" : "td", "col-" + key);
    row.appendChild(cells[key]);
  });
  const nameCell = cells.name; // the row's header cell holds the name and the path, as a card's title does
  nameCell.scope = "row";
  cells.name = el("span", "row-name");
  cells.path = el("span", "row-path");
  nameCell.append(cells.name, cells.path);
  cells.bar = el("span", "bar");
  cells.barFill = el("span", "bar-fill");
  cells.bar.appendChild(cells.barFill);
  cells.levelText = el("span", "bar-text");
  cells.level.append(cells.bar, cells.levelText);
  row._parts = cells;
  return row;
}

function renderRow(row, entry) {
  const c = row._parts;
  renderShared(row, c, entry);
  c.barFill.style.width = levelOf(entry) + "%";
  setText(c.levelText, levelText(entry));
  setText(c.empty, entry.empty_at ? whenText(entry.empty_at) : "—");
  setText(c.gel, gelText(entry.gel_used));
  setText(c.status, badgeOf(entry)[1]);
  c.status.className = "col-status " + badgeOf(entry)[0].replace("badge-", "status-");
  setText(c.seen, entry.last_seen ? agoText(entry.last_seen) : S.never_seen);
}

function nodeFor(entry) {
  const table = view.mode === "table";
  const store = table ? view.rows : view.cards;
  let node = store.get(entry.id);
  if (!node) {
    node = table ? buildRow(entry) : buildCard(entry);
    store.set(entry.id, node);
    (table ? renderRow : renderCard)(node, entry);
  }
  return node;
}

/** Redraw the changed entries, re-order when the order (or the search, or the view) changed. */
function render(change) {
  const list = $("dispenser-list");
  if (!list || !state.payload) return;
  const table = view.mode === "table";
  const redraw = table ? renderRow : renderCard;
  const store = table ? view.rows : view.cards;
  if (change.tick) store.forEach((node, id) => { if (state.entry(id)) redraw(node, state.entry(id)); });
  else if (change.changed) change.changed.forEach((id) => {
    const entry = state.entry(id);
    if (entry && store.has(id)) redraw(store.get(id), entry);
  });
  const matching = state.attentionFirst().filter(matches);
  const entries = matching.slice(0, view.limit);
  const order = view.mode + "|" + entries.map((e) => e.id).join("\u0001");
  if (order !== view.order || change.relayout) {
    view.order = order;
    const nodes = entries.map(nodeFor);
    (table ? $("dispenser-rows") : list).replaceChildren(...nodes);
  }
  list.dataset.count = String(state.count());
  $("dispenser-table").hidden = !table;
  list.hidden = table;
  setText($("dispenser-count"), panels.t("count", { shown: matching.length, total: state.count() }));
  $("no-match").hidden = matching.length > 0 || state.count() === 0;
  const more = $("show-more");
  more.hidden = matching.length <= entries.length;
  if (!more.hidden) setText(more, panels.t("show_more", { n: Math.min(STEP, matching.length - entries.length),
    left: matching.length - entries.length }));
}

function setMode(mode) {
  view.mode = mode;
  view.cards.clear(); // the hidden view was not kept up to date: rebuild it
  view.rows.clear();
  ["cards", "table"].forEach((m) => $("view-" + m).setAttribute("aria-pressed", String(m === mode)));
  try {
    window.localStorage.setItem("dashboard-view", mode);
  } catch (err) {
    /* private mode: the choice lasts for this page only */
  }
  requestRender({ relayout: true });
}

function start() {
  const search = $("search");
  if (!search) return;
  search.addEventListener("input", () => {
    view.query = fold(search.value.trim());
    requestRender({ relayout: true });
  });
  $("show-more").addEventListener("click", () => {
    view.limit += STEP;
    requestRender({ relayout: true });
  });
  $("view-cards").addEventListener("click", () => setMode("cards"));
  $("view-table").addEventListener("click", () => setMode("table"));
  let saved = null;
  try {
    saved = window.localStorage.getItem("dashboard-view");
  } catch (err) {
    saved = null;
  }
  if (saved === "table") setMode("table");
}

export const cards = { start: start, render: render };

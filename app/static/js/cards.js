/* The desktop list: one card per dispenser or a dense table, "needs attention" first, search by name or group.
 * Only the cards whose figures changed are redrawn; the list is re-ordered only when the order changed. */
(function (G) {
  "use strict";

  const S = G.S;
  // A desk shows the most urgent first; past a few hundred, drawing every card on each use would cost more than
  // it tells (a thousand cards re-ordered on every use freeze the page): more on demand, or search, or a group.
  const STEP = 150;
  const view = { mode: "cards", query: "", order: "", cards: new Map(), rows: new Map(), limit: STEP };

  function fold(text) {
    return String(text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function matches(entry) {
    if (!view.query) return true;
    return fold(entry.name + " " + entry.id + " " + G.pathText(entry)).includes(view.query);
  }

  function badgeOf(entry) {
    if (entry.mode === "test") return ["badge-test", S.mode_test]; // commissioning: its presses count nowhere
    if (!entry.online) return ["badge-offline", S.offline];
    if (entry.low) return ["badge-low", S.low];
    return ["badge-online", S.online];
  }

  function seenText(entry) {
    let seen = entry.last_seen ? G.fill(S.seen, { when: G.agoText(entry.last_seen) }) : S.never_seen;
    if (!entry.online && entry.last_seen) seen += " · " + S.stale;
    return seen;
  }

  function emptyText(entry) {
    return entry.empty_at ? G.fill(S.empty_at, { when: G.whenText(entry.empty_at) }) : S.empty_unknown;
  }

  function buildCard(entry) {
    const el = G.el;
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
    G.setText(parts.name, entry.name);
    const path = G.pathText(entry);
    G.setText(parts.path, path ? path + " · " + entry.id : entry.id);
    G.setText(parts.hands, G.fmt.int.format(entry.hands_detected));
    G.setText(parts.doses, G.fmt.int.format(entry.events));
  }

  function renderCard(card, entry) {
    const p = card._parts;
    renderShared(card, p, entry);
    const badge = badgeOf(entry);
    G.setText(p.badge, badge[1]);
    p.badge.className = "badge " + badge[0];
    const level = G.levelOf(entry);
    p.fill.style.height = level + "%"; // CSSOM: allowed by the style-src CSP, unlike a style attribute
    G.setText(p.level, G.levelText(entry));
    p.gauge.setAttribute("aria-valuenow", String(level));
    const gel = G.gelParts(entry.gel_used);
    G.setAmount(p.gel, gel[0], gel[1]);
    G.setText(p.empty, emptyText(entry));
    G.setText(p.seen, seenText(entry));
    if (entry.last_seen) p.seen.title = G.stampText(entry.last_seen);
  }

  function buildRow(entry) {
    const row = G.el("tr", "row");
    row.dataset.id = entry.id;
    const cells = {};
    ["name", "level", "empty", "gel", "hands", "doses", "status", "seen"].forEach((key) => {
      cells[key] = G.el(key === "name" ? "th" : "td", "col-" + key);
      row.appendChild(cells[key]);
    });
    const nameCell = cells.name; // the row's header cell holds the name and the path, as a card's title does
    nameCell.scope = "row";
    cells.name = G.el("span", "row-name");
    cells.path = G.el("span", "row-path");
    nameCell.append(cells.name, cells.path);
    cells.bar = G.el("span", "bar");
    cells.barFill = G.el("span", "bar-fill");
    cells.bar.appendChild(cells.barFill);
    cells.levelText = G.el("span", "bar-text");
    cells.level.append(cells.bar, cells.levelText);
    row._parts = cells;
    return row;
  }

  function renderRow(row, entry) {
    const c = row._parts;
    renderShared(row, c, entry);
    c.barFill.style.width = G.levelOf(entry) + "%";
    G.setText(c.levelText, G.levelText(entry));
    G.setText(c.empty, entry.empty_at ? G.whenText(entry.empty_at) : "—");
    G.setText(c.gel, G.gelText(entry.gel_used));
    G.setText(c.status, badgeOf(entry)[1]);
    c.status.className = "col-status " + badgeOf(entry)[0].replace("badge-", "status-");
    G.setText(c.seen, entry.last_seen ? G.agoText(entry.last_seen) : S.never_seen);
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
    const list = G.$("dispenser-list");
    if (!list || !G.state.payload) return;
    const table = view.mode === "table";
    const redraw = table ? renderRow : renderCard;
    const store = table ? view.rows : view.cards;
    if (change.tick) store.forEach((node, id) => { if (G.state.entry(id)) redraw(node, G.state.entry(id)); });
    else if (change.changed) change.changed.forEach((id) => {
      const entry = G.state.entry(id);
      if (entry && store.has(id)) redraw(store.get(id), entry);
    });
    const matching = G.state.attentionFirst().filter(matches);
    const entries = matching.slice(0, view.limit);
    const order = view.mode + "|" + entries.map((e) => e.id).join("\u0001");
    if (order !== view.order || change.relayout) {
      view.order = order;
      const nodes = entries.map(nodeFor);
      (table ? G.$("dispenser-rows") : list).replaceChildren(...nodes);
    }
    list.dataset.count = String(G.state.count());
    G.$("dispenser-table").hidden = !table;
    list.hidden = table;
    G.setText(G.$("dispenser-count"), G.panels.t("count", { shown: matching.length, total: G.state.count() }));
    G.$("no-match").hidden = matching.length > 0 || G.state.count() === 0;
    const more = G.$("show-more");
    more.hidden = matching.length <= entries.length;
    if (!more.hidden) G.setText(more, G.panels.t("show_more", { n: Math.min(STEP, matching.length - entries.length),
      left: matching.length - entries.length }));
  }

  function setMode(mode) {
    view.mode = mode;
    view.cards.clear(); // the hidden view was not kept up to date: rebuild it
    view.rows.clear();
    ["cards", "table"].forEach((m) => G.$("view-" + m).setAttribute("aria-pressed", String(m === mode)));
    try {
      window.localStorage.setItem("dashboard-view", mode);
    } catch (err) {
      /* private mode: the choice lasts for this page only */
    }
    G.requestRender({ relayout: true });
  }

  function start() {
    const search = G.$("search");
    if (!search) return;
    search.addEventListener("input", () => {
      view.query = fold(search.value.trim());
      G.requestRender({ relayout: true });
    });
    G.$("show-more").addEventListener("click", () => {
      view.limit += STEP;
      G.requestRender({ relayout: true });
    });
    G.$("view-cards").addEventListener("click", () => setMode("cards"));
    G.$("view-table").addEventListener("click", () => setMode("table"));
    let saved = null;
    try {
      saved = window.localStorage.getItem("dashboard-view");
    } catch (err) {
      saved = null;
    }
    if (saved === "table") setMode("table");
  }

  G.cards = { start: start, render: render };
})(window.Gel = window.Gel || {});

/* Wall display: every dispenser in tiles sized to fit the screen, or in pages that turn by themselves
 * ("page 2/7"), so nothing is hidden for good. A use redraws only its own tile (if on screen), in the next frame. */
import { wards } from "./kioskwards.js";
import { panels } from "./panels.js";
import { $, el, fill, fmt, gelText, levelOf, levelText, pathParts, perFrame, setText, whenText } from "../shared/format.js";
import { KIOSK, S, settings } from "../shared/settings.js";
import { state } from "../shared/state.js";

const MIN_PAGE_S = 0.3;
const kiosk = {
  tiles: [], // the tile nodes of one page, reused from page to page
  shown: new Map(), // id -> tile on screen now
  order: [], // every dispenser id, in the stable order pages follow
  mode: "dispensers", // or "wards": a site's wall shows its wards past a few pages of dispensers (kioskwards.js)
  items: [], // what the tiles show, in page order: the dispensers, or the wards
  membership: -1,
  perPage: 1,
  pages: 1,
  page: 0,
  rich: false, // tiles roomy enough for the figures line
  nameBox: 1.2, // em: the name box, as tall as the longest name needs
};

function pagePeriodMs() {
  const asked = Number(new URLSearchParams(window.location.search).get("page_s"));
  const seconds = asked > 0 ? asked : settings.page_s || 10;
  return Math.max(MIN_PAGE_S, seconds) * 1000;
}

/** The most specific end of the path (a tile is narrow; the ward tells two "Chambre 12" apart, the site does
 * not), below the group the whole screen is about. */
function shortPath(entry) {
  return pathParts(entry).slice(-2).join(" \u203a ");
}

function buildTile() {
  const tile = el("article", "dispenser tile");
  const p = {
    name: el("h3", "dispenser-name"), path: el("p", "tile-path"), bar: el("span", "bar"),
    fill: el("span", "bar-fill"), level: el("span", "tile-level"), badge: el("span", "tile-badge"),
    detail: el("p", "tile-detail"),
  };
  const nameBox = el("div", "tile-name");
  nameBox.appendChild(p.name);
  p.bar.appendChild(p.fill);
  const status = el("div", "tile-status");
  status.append(p.bar, p.level, p.badge);
  tile.append(nameBox, p.path, status, p.detail);
  tile._parts = p;
  return tile;
}

function renderTile(tile, entry) {
  const p = tile._parts;
  if (tile.dataset.id !== entry.id) tile.dataset.id = entry.id;
  tile.classList.toggle("is-offline", !entry.online);
  tile.classList.toggle("is-low", !!entry.low);
  tile.classList.toggle("is-idle", !!entry.no_use);
  tile.classList.toggle("is-test", entry.mode === "test"); // commissioning: its presses count nowhere
  setText(p.name, entry.name);
  // Never cut a name: past two lines it takes a smaller font, and the name box is sized for the longest one.
  p.name.classList.toggle("name-long", nameLines(entry.name) > 2);
  setText(p.path, shortPath(entry));
  const level = levelOf(entry);
  if (p.fill.style.width !== level + "%") p.fill.style.width = level + "%"; // CSSOM: allowed by the CSP
  setText(p.level, levelText(entry));
  setText(p.badge, entry.mode === "test" ? S.mode_test : !entry.online ? S.offline : entry.low ? S.low : entry.no_use ? panels.t("reason_no_use") : "");
  if (kiosk.rich) {
    const when = entry.empty_at ? fill(S.empty_at, { when: whenText(entry.empty_at) }) : "";
    setText(p.detail, [gelText(entry.gel_used), fmt.int.format(entry.hands_detected) + " " + S.hands.toLowerCase(),
      when].filter(Boolean).join(" · "));
  }
}

// Tile geometry in em of the tile font (the CSS sizes match): 11em wide; the name box is as tall as the longest
// name needs (about 16 bold characters a line; past two lines a name takes a smaller font).
const TILE_W = 11;
const CHARS_PER_LINE = 16;
const BODY_H = 3.7; // padding, path, level bar and gaps
const DETAIL_H = 1.9; // the figures line of roomy tiles

const LONG_SCALE = 0.72; // the font of a name that needs more than two lines

function nameLines(name) {
  return Math.max(1, Math.ceil(name.length / CHARS_PER_LINE));
}

/** The height (em) of a name's box: one or two lines, or a long name's lines in the smaller font. */
function nameBox(name) {
  const lines = nameLines(name);
  if (lines <= 2) return lines * 1.2;
  return Math.ceil(name.length / (CHARS_PER_LINE / LONG_SCALE)) * 1.2 * LONG_SCALE;
}

function tileHeight(rich) {
  return kiosk.nameBox + BODY_H + (rich || kiosk.mode === "wards" ? DETAIL_H : 0); // a ward always shows its use
}

/** The largest tile font that fits every dispenser on one screen; below the legible minimum, pages. */
function computeLayout() {
  const list = $("dispenser-list");
  const box = list.getBoundingClientRect();
  const vh = window.innerHeight;
  const gap = Math.max(4, Math.round(vh * 0.008));
  const n = Math.max(1, kiosk.items.length);
  const fMax = vh * 0.042;
  const fMin = Math.max(13, vh * 0.0185);
  const fRich = vh * 0.026;
  const nameOf = kiosk.mode === "wards" ? wards.name : (id) => (state.entry(id) || { name: "" }).name;
  kiosk.nameBox = kiosk.items.reduce((h, id) => Math.max(h, nameBox(nameOf(id))), 1.2);
  const fits = (f, rich) => {
    const cols = Math.max(1, Math.floor((box.width + gap) / (TILE_W * f + gap)));
    const rows = Math.max(1, Math.floor((box.height + gap) / (tileHeight(rich) * f + gap)));
    return { cols: cols, rows: rows, per: cols * rows, f: f, rich: rich };
  };
  let pick = null;
  for (let f = fMax; f >= fMin && !pick; f -= 0.5) {
    const rich = fits(f, f >= fRich);
    if (rich.per >= n) pick = rich;
    else if (f >= fRich) {
      const plain = fits(f, false);
      if (plain.per >= n) pick = plain;
    }
  }
  if (!pick) pick = fits(fMin, false);
  const cols = pick.per >= n ? Math.min(pick.cols, Math.ceil(n / Math.ceil(n / pick.cols))) : pick.cols;
  const rows = Math.min(pick.rows, Math.ceil(Math.min(n, pick.per) / cols));
  kiosk.rich = pick.rich;
  kiosk.perPage = Math.min(pick.per, cols * pick.rows);
  kiosk.pages = Math.ceil(n / kiosk.perPage);
  list.style.fontSize = pick.f.toFixed(1) + "px";
  list.style.gap = gap + "px";
  list.style.gridTemplateColumns = "repeat(" + cols + ", minmax(0, 1fr))";
  list.style.gridTemplateRows = "repeat(" + rows + ", " + (tileHeight(pick.rich) * pick.f).toFixed(1) + "px)";
  list.classList.toggle("tiles-rich", pick.rich || kiosk.mode === "wards");
  list.style.setProperty("--name-box", kiosk.nameBox.toFixed(2) + "em");
  list.dataset.perPage = String(kiosk.perPage);
  list.dataset.pages = String(kiosk.pages);
}

function showPage() {
  const list = $("dispenser-list");
  if (kiosk.page >= kiosk.pages) kiosk.page = 0;
  const start = kiosk.page * kiosk.perPage;
  const byWard = kiosk.mode === "wards";
  const slice = byWard ? kiosk.items.slice(start, start + kiosk.perPage)
    : kiosk.items.slice(start, start + kiosk.perPage).map(state.entry).filter(Boolean);
  while (kiosk.tiles.length < slice.length) kiosk.tiles.push(buildTile());
  kiosk.shown.clear();
  const used = kiosk.tiles.slice(0, slice.length);
  const alerts = byWard ? wards.alerts() : null;
  slice.forEach((item, i) => {
    if (byWard) {
      wards.render(used[i], item, alerts);
      kiosk.shown.set(item, used[i]);
    } else {
      if (used[i].dataset.ward) delete used[i].dataset.ward;
      renderTile(used[i], item);
      kiosk.shown.set(item.id, used[i]);
    }
  });
  if (list.children.length !== used.length || used.some((t, i) => list.children[i] !== t)) list.replaceChildren(...used);
  list.dataset.count = String(kiosk.items.length);
  list.dataset.mode = kiosk.mode;
  const marker = $("kiosk-page");
  marker.hidden = kiosk.pages < 2;
  setText(marker, fill(S.page || "page {n}/{total}", { n: kiosk.page + 1, total: kiosk.pages }));
  marker.dataset.page = String(kiosk.page + 1);
  marker.dataset.pages = String(kiosk.pages);
  document.dispatchEvent(new CustomEvent("kiosk-page", {
    detail: { page: kiosk.page + 1, pages: kiosk.pages, mode: kiosk.mode, ids: slice.map((e) => (byWard ? e : e.id)) },
  }));
}

/** Dispenser tiles, or the wards' when those would take more than a few pages (kioskwards.js). */
function relayout() {
  kiosk.mode = "dispensers";
  kiosk.items = kiosk.order;
  computeLayout();
  const wardIds = wards.of(kiosk.order);
  if (wards.wanted(kiosk.pages, wardIds)) {
    kiosk.mode = "wards";
    kiosk.items = wardIds;
    computeLayout();
  }
  panels.refitAttention();
  showPage();
}

function render(change) {
  if (!state.payload) return;
  if (kiosk.membership !== state.membership || change.renamed) {
    kiosk.membership = state.membership;
    kiosk.order = state.sorted().map((e) => e.id);
    relayout();
    return;
  }
  if (change.tick) {
    showPage();
    return;
  }
  if (!change.changed) return;
  if (kiosk.mode === "wards") {
    const touched = new Set(Array.from(change.changed, wards.wardOf).filter((w) => kiosk.shown.has(w)));
    if (!touched.size) return;
    const alerts = wards.alerts();
    touched.forEach((w) => wards.render(kiosk.shown.get(w), w, alerts));
    return;
  }
  change.changed.forEach((id) => {
    const tile = kiosk.shown.get(id);
    if (tile) renderTile(tile, state.entry(id));
  });
}

function turn() {
  if (kiosk.pages < 2) return;
  kiosk.page = (kiosk.page + 1) % kiosk.pages;
  showPage();
}

function start() {
  if (!KIOSK) return;
  // The screen, or the room left by the alerts banner, changed size: fit again.
  const refit = perFrame(() => {
    if (state.payload) relayout();
  });
  window.addEventListener("resize", refit);
  if (typeof window.ResizeObserver === "function") {
    const sizes = new Map();
    const watch = new window.ResizeObserver((records) => {
      const moved = records.some((r) => {
        const key = Math.round(r.contentRect.width) + "x" + Math.round(r.contentRect.height);
        const changed = sizes.get(r.target) !== key;
        sizes.set(r.target, key);
        return changed;
      });
      if (moved) refit();
    });
    watch.observe($("dispenser-list"));
    watch.observe($("attention-list"));
  }
  setInterval(turn, pagePeriodMs());
}

const kioskApi = { start: start, render: render };

export { kioskApi as kiosk };

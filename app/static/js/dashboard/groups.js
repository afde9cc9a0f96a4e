/* Group navigation: the picker, the breadcrumb (URL `?group=ID`) and the subgroups with their live totals.
 * The tree comes from the page settings (the config); the figures from the payload's `groups`. */
import { panels } from "./panels.js";
import { $, count, el, fmt, gelText, groupPicker, setText } from "../shared/format.js";
import { S, settings } from "../shared/settings.js";
import { state } from "../shared/state.js";

const tree = settings.groups || [];
const CURRENT = settings.group || null;
const byId = new Map(tree.map((g) => [g.id, g]));
const children = new Map();
tree.forEach((g) => {
  const parent = g.parent && byId.has(g.parent) ? g.parent : null;
  if (!children.has(parent)) children.set(parent, []);
  children.get(parent).push(g);
});

/** The URL of a group view, keeping the language, kiosk and page period of this one. */
function hrefFor(id) {
  const query = new URLSearchParams(window.location.search);
  if (id) query.set("group", id);
  else query.delete("group");
  const text = query.toString();
  return window.location.pathname + (text ? "?" + text : "");
}

function ancestors(id) {
  const chain = [];
  let node = byId.get(id);
  while (node && chain.length <= tree.length) {
    chain.unshift(node);
    node = node.parent ? byId.get(node.parent) : null;
  }
  return chain;
}

function buildBreadcrumb() {
  const nav = $("breadcrumb");
  if (!nav) return;
  const items = [];
  const crumb = (label, id, current) => {
    const li = el("li", "crumb");
    if (current) {
      const here = el("span", "crumb-current", label);
      here.setAttribute("aria-current", "page");
      li.appendChild(here);
    } else {
      const link = el("a", "crumb-link", label);
      link.href = hrefFor(id);
      li.appendChild(link);
    }
    return li;
  };
  items.push(crumb(panels.t("all_dispensers"), null, !CURRENT));
  ancestors(CURRENT).forEach((g) => items.push(crumb(g.name, g.id, g.id === CURRENT)));
  nav.querySelector("ol").replaceChildren(...items);
}

function subgroupCard(group) {
  const link = el("a", "subgroup");
  link.href = hrefFor(group.id);
  link.dataset.group = group.id;
  link.append(el("span", "subgroup-name", group.name));
  const figures = el("span", "subgroup-figures");
  link.append(figures);
  const alerts = el("span", "subgroup-alerts");
  link.append(alerts);
  link._parts = { figures: figures, alerts: alerts };
  return link;
}

const cards = new Map();

/** The children of the current group (or the top groups) with their totals and alert counts. */
function renderSubgroups() {
  const box = $("subgroups");
  if (!box) return;
  const list = children.get(CURRENT) || [];
  box.hidden = list.length === 0;
  if (!list.length) return;
  const nodes = list.map((g) => {
    if (!cards.has(g.id)) cards.set(g.id, subgroupCard(g));
    const card = cards.get(g.id);
    const live = state.group(g.id);
    if (live) {
      setText(card._parts.figures, count("dispensers", live.dispensers || 0) + " · " + gelText(live.gel_used || 0)
        + " · " + fmt.int.format(live.hands_detected || 0) + " " + S.hands.toLowerCase());
      setText(card._parts.alerts, live.alerts ? count("alerts", live.alerts) : "");
      card.classList.toggle("has-alerts", !!live.alerts);
    }
    return card;
  });
  const target = $("subgroup-list");
  if (target.children.length !== nodes.length) target.replaceChildren(...nodes);
}

function render(change) {
  if (change.groups || change.full) renderSubgroups();
}

function start() {
  const nav = $("group-nav");
  if (nav) nav.hidden = tree.length === 0;
  if (!tree.length) return;
  groupPicker($("group-picker"), CURRENT, hrefFor);
  buildBreadcrumb();
  const current = byId.get(CURRENT);
  if (current) document.title = current.name + " — " + document.title;
}

export const groups = { start: start, render: render, hrefFor: hrefFor, byId: byId };

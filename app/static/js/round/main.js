/* Refill round (`/tournee?group=ID`), for a cleaner's phone: the dispensers to refill, lowest and soonest empty
 * first, each with its group path and a big "Refilled" button. The token (admin or maintenance) is typed once and
 * kept in localStorage, sent as a Bearer header: no cookie session. The live push confirms the refill. */
import { $, el, fill, levelOf, levelText, pathText, perFrame, setText, whenText } from "../shared/format.js";
import { live } from "../shared/live.js";
import { S, settings } from "../shared/settings.js";
import { state } from "../shared/state.js";
import { showSignedIn, signedIn } from "../shared/signedin.js";
import { staffToken } from "../shared/token.js";
import { layOut, sectionOf, showCounts } from "./sections.js";

const round = { ids: [], items: new Map(), membership: -1, showAll: false, asked: new Map() };

const t = (key, values) => fill(S[key] || key, values || {});

const token = () => staffToken.get(); // token.js: kept in localStorage, shared with the census form

function setToken(value) {
  staffToken.set(value);
  showTokenForm(!value, false);
  showSignedIn("signed-in");
}

function showTokenForm(show, refused) {
  $("token-form").hidden = !show;
  $("token-error").hidden = !refused;
  $("forget-token").hidden = show;
  if (show) $("token").focus();
}

function needsRefill(entry) {
  return round.showAll || sectionOf(entry) !== "other";
}

/** Where an item shows: by its figures, except one refilled on this round, which stays where it was tapped. */
function placeOf(entry) {
  const li = round.items.get(entry.id);
  const done = li && (li.classList.contains("is-refilled") || round.asked.has(entry.id));
  return done && li.dataset.section ? li.dataset.section : sectionOf(entry);
}

function byUrgency(a, b) {
  const d = levelOf(a) - levelOf(b);
  if (d) return d;
  const ta = a.empty_at ? new Date(a.empty_at).getTime() : Infinity;
  const tb = b.empty_at ? new Date(b.empty_at).getTime() : Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return state.collator.compare(a.name, b.name);
}

function buildItem(entry) {
  const li = el("li", "refill-item");
  li.dataset.id = entry.id;
  const p = {
    name: el("h2", "refill-name"), path: el("p", "refill-path"), bar: el("span", "bar"),
    fill: el("span", "bar-fill"), level: el("span", "refill-level"), when: el("span", "refill-when"),
    button: el("button", "refill-button big-button", t("refill")), status: el("p", "refill-status"),
  };
  p.button.type = "button";
  p.status.setAttribute("role", "status");
  p.bar.appendChild(p.fill);
  const gauge = el("div", "refill-gauge");
  gauge.append(p.bar, p.level, p.when);
  const info = el("div", "refill-info");
  info.append(p.name, p.path, gauge);
  li.append(info, p.button, p.status);
  li._parts = p;
  p.button.addEventListener("click", () => refill(entry.id));
  return li;
}

function renderItem(li, entry) {
  const p = li._parts;
  li.classList.toggle("is-low", !!entry.low);
  li.classList.toggle("is-offline", !entry.online);
  setText(p.name, entry.name);
  setText(p.path, pathText(entry) || entry.id);
  p.fill.style.width = levelOf(entry) + "%"; // CSSOM: allowed by the style-src CSP
  setText(p.level, levelText(entry));
  let when = entry.empty_at ? fill(S.empty_at, { when: whenText(entry.empty_at) }) : S.empty_unknown;
  if (!entry.online) when = S.offline + " · " + when;
  setText(p.when, when);
  const asked = round.asked.get(entry.id);
  if (asked && (entry.refilled_at || "") !== asked.refilledAt) {
    // The push (or poll) carries the new refill: the level went back up, on the server's word.
    const asked = round.asked.get(entry.id);
    round.asked.delete(entry.id);
    li.classList.add("is-refilled");
    const by = asked && asked.by ? t("refill_by", asked.by) + " · " : "";
    setText(p.status, by + t("refill_confirmed", { level: levelText(entry) }));
    p.button.disabled = false;
  }
}

async function refill(id) {
  const li = round.items.get(id);
  const entry = state.entry(id);
  const value = token();
  if (!value) {
    showTokenForm(true, false);
    return;
  }
  li._parts.button.disabled = true;
  round.asked.set(id, { refilledAt: entry ? entry.refilled_at || "" : "" });
  setText(li._parts.status, t("refill_sent"));
  try {
    const resp = await live.fetch("api/dispensers/" + encodeURIComponent(id) + "/refill", {
      method: "POST", headers: { Authorization: "Bearer " + value }, cache: "no-store",
    });
    if (resp.status === 401 || resp.status === 403) {
      round.asked.delete(id);
      setToken("");
      showTokenForm(true, true);
      setText(li._parts.status, t("token_refused"));
      li._parts.button.disabled = false;
      return;
    }
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const at = new Date().toLocaleTimeString(settings.locale, { hour: "2-digit", minute: "2-digit" });
    const by = signedIn().name ? { name: signedIn().name, at: at } : null;
    const asked = round.asked.get(id);
    if (!asked) {
      // The push confirmed the refill before this answer came back: keep its confirmation, add who did it.
      const now = state.entry(id);
      const confirmed = t("refill_confirmed", { level: now ? levelText(now) : "" });
      setText(li._parts.status, by ? t("refill_by", by) + " · " + confirmed : confirmed);
      return;
    }
    asked.by = by;
    setText(li._parts.status, by ? t("refill_by", by) : t("refill_done"));
    if (!live.socketUp()) live.poll(false); // no push coming: ask now
  } catch (err) {
    round.asked.delete(id);
    setText(li._parts.status, t("refill_failed"));
    li._parts.button.disabled = false;
  }
}

/** The list keeps every entry it showed (a refilled one stays, confirmed, until the page is reloaded). */
function render(change) {
  if (!state.payload) return;
  if (change.relayout && !round.showAll) {
    // "Show all" unticked: drop what needs no refill, except the entries just refilled on this round.
    round.ids.forEach((id) => {
      const e = state.entry(id);
      const done = round.items.get(id).classList.contains("is-refilled") || round.asked.has(id);
      if (!e || (!needsRefill(e) && !done)) round.items.delete(id);
    });
  }
  const fresh = state.sorted().filter((e) => !round.items.has(e.id) && needsRefill(e));
  let moved = fresh.length > 0 || round.membership !== state.membership || !!change.relayout;
  if (!moved) {
    (change.changed || []).forEach((id) => {
      const li = round.items.get(id);
      if (!li) return;
      renderItem(li, state.entry(id));
      if (placeOf(state.entry(id)) !== li.dataset.section) moved = true; // e.g. soon empty, now under half
    });
  }
  if (moved) {
    round.membership = state.membership;
    const entries = Array.from(round.items.keys()).map(state.entry).filter(Boolean).concat(fresh).sort(byUrgency);
    round.ids = entries.map((e) => e.id);
    entries.forEach((e) => {
      if (!round.items.has(e.id)) round.items.set(e.id, buildItem(e));
      renderItem(round.items.get(e.id), e);
    });
    layOut(entries, round.items, placeOf);
  }
  showCounts();
}

function start() {
  let pending = null;
  const flush = perFrame(() => {
    const change = pending;
    pending = null;
    render(change || {});
  });
  const request = (change) => {
    pending = pending || { changed: new Set() };
    (change.changed || []).forEach((id) => pending.changed.add(id));
    if (change.relayout) pending.relayout = true;
    flush();
  };
  state.onChange(request);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (value) setToken(value);
  });
  $("forget-token").addEventListener("click", () => setToken(""));
  $("show-all").addEventListener("change", (event) => {
    round.showAll = event.target.checked;
    request({ relayout: true });
  });
  showTokenForm(!token(), false);
  showSignedIn("signed-in");
  live.start();
}

start();

/* Refill round (`/tournee?group=ID`), for a cleaner's phone: the dispensers to refill, lowest and soonest empty
 * first, each with its group path and a big "Refilled" button. The token (admin or maintenance) is typed once and
 * kept in localStorage, sent as a Bearer header: no cookie session. The live push confirms the refill. */
(function (G) {
  "use strict";

  const S = G.S;
  const REFILL_BELOW_PCT = 50; // a round refills what would not last until the next one
  const SOON_MS = 48 * 3600000;
  const round = { ids: [], items: new Map(), membership: -1, showAll: false, asked: new Map() };

  const t = (key, values) => G.fill(S[key] || key, values || {});

  const token = () => G.staffToken.get(); // token.js: kept in localStorage, shared with the census form

  function setToken(value) {
    G.staffToken.set(value);
    showTokenForm(!value, false);
  }

  function showTokenForm(show, refused) {
    G.$("token-form").hidden = !show;
    G.$("token-error").hidden = !refused;
    G.$("forget-token").hidden = show;
    if (show) G.$("token").focus();
  }

  function needsRefill(entry) {
    const level = G.levelOf(entry);
    const soon = entry.empty_at && new Date(entry.empty_at).getTime() - Date.now() < SOON_MS;
    return round.showAll || entry.low || level < REFILL_BELOW_PCT || !!soon;
  }

  function byUrgency(a, b) {
    const d = G.levelOf(a) - G.levelOf(b);
    if (d) return d;
    const ta = a.empty_at ? new Date(a.empty_at).getTime() : Infinity;
    const tb = b.empty_at ? new Date(b.empty_at).getTime() : Infinity;
    if (ta !== tb) return ta < tb ? -1 : 1;
    return G.state.collator.compare(a.name, b.name);
  }

  function buildItem(entry) {
    const li = G.el("li", "refill-item");
    li.dataset.id = entry.id;
    const p = {
      name: G.el("h2", "refill-name"), path: G.el("p", "refill-path"), bar: G.el("span", "bar"),
      fill: G.el("span", "bar-fill"), level: G.el("span", "refill-level"), when: G.el("span", "refill-when"),
      button: G.el("button", "refill-button big-button", t("refill")), status: G.el("p", "refill-status"),
    };
    p.button.type = "button";
    p.status.setAttribute("role", "status");
    p.bar.appendChild(p.fill);
    const gauge = G.el("div", "refill-gauge");
    gauge.append(p.bar, p.level, p.when);
    const info = G.el("div", "refill-info");
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
    G.setText(p.name, entry.name);
    G.setText(p.path, G.pathText(entry) || entry.id);
    p.fill.style.width = G.levelOf(entry) + "%"; // CSSOM: allowed by the style-src CSP
    G.setText(p.level, G.levelText(entry));
    let when = entry.empty_at ? G.fill(S.empty_at, { when: G.whenText(entry.empty_at) }) : S.empty_unknown;
    if (!entry.online) when = S.offline + " · " + when;
    G.setText(p.when, when);
    const asked = round.asked.get(entry.id);
    if (asked && (entry.refilled_at || "") !== asked.refilledAt) {
      // The push (or poll) carries the new refill: the level went back up, on the server's word.
      round.asked.delete(entry.id);
      li.classList.add("is-refilled");
      G.setText(p.status, t("refill_confirmed", { level: G.levelText(entry) }));
      p.button.disabled = false;
    }
  }

  async function refill(id) {
    const li = round.items.get(id);
    const entry = G.state.entry(id);
    const value = token();
    if (!value) {
      showTokenForm(true, false);
      return;
    }
    li._parts.button.disabled = true;
    round.asked.set(id, { refilledAt: entry ? entry.refilled_at || "" : "" });
    G.setText(li._parts.status, t("refill_sent"));
    try {
      const resp = await G.live.fetch("api/dispensers/" + encodeURIComponent(id) + "/refill", {
        method: "POST", headers: { Authorization: "Bearer " + value }, cache: "no-store",
      });
      if (resp.status === 401 || resp.status === 403) {
        round.asked.delete(id);
        setToken("");
        showTokenForm(true, true);
        G.setText(li._parts.status, t("token_refused"));
        li._parts.button.disabled = false;
        return;
      }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      G.setText(li._parts.status, t("refill_done"));
      if (!G.live.socketUp()) G.live.poll(false); // no push coming: ask now
    } catch (err) {
      round.asked.delete(id);
      G.setText(li._parts.status, t("refill_failed"));
      li._parts.button.disabled = false;
    }
  }

  /** The list keeps every entry it showed (a refilled one stays, confirmed, until the page is reloaded). */
  function render(change) {
    if (!G.state.payload) return;
    if (change.relayout && !round.showAll) {
      // "Show all" unticked: drop what needs no refill, except the entries just refilled on this round.
      round.ids.forEach((id) => {
        const e = G.state.entry(id);
        const done = round.items.get(id).classList.contains("is-refilled") || round.asked.has(id);
        if (!e || (!needsRefill(e) && !done)) round.items.delete(id);
      });
    }
    const fresh = G.state.sorted().filter((e) => !round.items.has(e.id) && needsRefill(e));
    if (fresh.length || round.membership !== G.state.membership || change.relayout) {
      round.membership = G.state.membership;
      const entries = Array.from(round.items.keys()).map(G.state.entry).filter(Boolean).concat(fresh).sort(byUrgency);
      round.ids = entries.map((e) => e.id);
      const nodes = entries.map((e) => {
        if (!round.items.has(e.id)) round.items.set(e.id, buildItem(e));
        renderItem(round.items.get(e.id), e);
        return round.items.get(e.id);
      });
      G.$("refill-list").replaceChildren(...nodes);
    } else {
      (change.changed || []).forEach((id) => {
        if (round.items.has(id)) renderItem(round.items.get(id), G.state.entry(id));
      });
    }
    const open = round.ids.map(G.state.entry).filter((e) => e && (e.low || G.levelOf(e) < REFILL_BELOW_PCT)).length;
    G.setText(G.$("refill-count"), t("to_refill", { n: open }));
    G.$("refill-empty").hidden = round.ids.length > 0;
  }

  function start() {
    let pending = null;
    const flush = G.perFrame(() => {
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
    G.state.onChange(request);
    G.$("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = G.$("token").value.trim();
      if (value) setToken(value);
    });
    G.$("forget-token").addEventListener("click", () => setToken(""));
    G.$("show-all").addEventListener("change", (event) => {
      round.showAll = event.target.checked;
      request({ relayout: true });
    });
    showTokenForm(!token(), false);
    G.live.start();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.Gel = window.Gel || {});

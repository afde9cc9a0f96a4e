/* Dashboard entry point: wires the figures (state.js, live.js) to the views. Every change is accumulated and the
 * views redraw once per animation frame, however many deltas arrived in between.
 * Modules, loaded in this order by the template: format, state, live, panels, groups, cards, kiosk, charts, this. */
(function (G) {
  "use strict";

  const RELATIVE_REFRESH_MS = 15000;
  let pending = null;

  function merge(into, change) {
    if (!into) {
      return Object.assign({}, change, { changed: new Set(change.changed || []) });
    }
    (change.changed || []).forEach((id) => into.changed.add(id));
    ["full", "membership", "renamed", "alerts", "totals", "groups", "tick", "relayout"].forEach((key) => {
      if (change[key]) into[key] = true;
    });
    return into;
  }

  const views = [G.panels, G.groups, G.KIOSK ? G.kiosk : G.cards];

  const flush = G.perFrame(() => {
    const change = pending;
    pending = null;
    if (!change || !G.state.payload) return;
    views.forEach((v) => v.render(change));
  });

  /** Ask for a redraw in the next frame (views also call it: search typed, view switched). */
  G.requestRender = function (change) {
    pending = merge(pending, change || {});
    flush();
  };

  function start() {
    G.state.onChange(G.requestRender);
    G.groups.start();
    G.cards.start();
    G.kiosk.start();
    G.charts.start();
    const notice = G.$("reload-notice");
    if (notice) notice.addEventListener("click", () => window.location.reload());
    G.live.start();
    setInterval(() => G.requestRender({ tick: true, full: true }), RELATIVE_REFRESH_MS); // "seen 3 min ago" moves
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.Gel = window.Gel || {});

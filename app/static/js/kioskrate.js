/* Kiosk of a ward (`/?kiosk=1&group=ID`): the ward's compliance rate today beside the clock (#kiosk-compliance),
 * shown when the ward has opportunities per patient-day and a census today; refreshed on use, throttled. */
(function (G) {
  "use strict";

  const REFRESH_MS = 60000; // the census may be typed elsewhere: no push tells us
  const THROTTLE_MS = 5000;

  async function refresh() {
    const node = G.$("kiosk-compliance");
    try {
      // No dates: the server's last 7 local days up to its today, today last.
      const answer = await G.rates.compliance({ group: G.settings.group, bucket: "day" });
      const row = answer.rows[answer.rows.length - 1];
      const value = row ? row.compliance_pct : null;
      node.dataset.refreshed = String(Number(node.dataset.refreshed || 0) + 1);
      node.hidden = !G.rates.isNum(value);
      if (node.hidden) return;
      const lvl = G.rates.level(value, answer.target_pct);
      G.rates.setLevel(node, lvl);
      node.dataset.value = String(value);
      const target = G.rates.isNum(answer.target_pct) ? " · " + G.rates.t("kiosk_target", { pct: G.rates.targetText(answer.target_pct) }) : "";
      G.setText(node, G.rates.t("kiosk_rate", { pct: G.rates.pctText(value) }) + target);
      node.title = G.rates.levelText(lvl, answer.target_pct);
    } catch (err) {
      /* keep what is shown; the next use or the slow refresh tries again */
    }
  }

  function start() {
    if (!G.KIOSK || !G.settings.group || !G.$("kiosk-compliance")) return;
    const soon = G.rates.throttled(refresh, THROTTLE_MS);
    G.state.onChange((change) => {
      if (change.totals || (change.changed && change.changed.size)) soon();
    });
    setInterval(refresh, REFRESH_MS);
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.Gel = window.Gel || {});

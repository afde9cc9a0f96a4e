/* Kiosk of a ward (`/?kiosk=1&group=ID`): the ward's compliance rate today beside the clock (#kiosk-compliance),
 * shown when the ward has opportunities per patient-day and a census today; refreshed on use, throttled. */
import { rates } from "../compliance/rates.js";
import { $, setText } from "../shared/format.js";
import { KIOSK, settings } from "../shared/settings.js";
import { state } from "../shared/state.js";

const REFRESH_MS = 60000; // the census may be typed elsewhere: no push tells us
const THROTTLE_MS = 5000;

async function refresh() {
  const node = $("kiosk-compliance");
  try {
    // No dates: the server's last 7 local days up to its today, today last.
    const answer = await rates.compliance({ group: settings.group, bucket: "day" });
    const row = answer.rows[answer.rows.length - 1];
    const value = row ? row.compliance_pct : null;
    node.dataset.refreshed = String(Number(node.dataset.refreshed || 0) + 1);
    node.hidden = !rates.isNum(value);
    if (node.hidden) return;
    const lvl = rates.level(value, answer.target_pct);
    rates.setLevel(node, lvl);
    node.dataset.value = String(value);
    const target = rates.isNum(answer.target_pct) ? " · " + rates.t("kiosk_target", { pct: rates.targetText(answer.target_pct) }) : "";
    setText(node, rates.t("kiosk_rate", { pct: rates.pctText(value) }) + target);
    node.title = rates.levelText(lvl, answer.target_pct);
  } catch (err) {
    /* keep what is shown; the next use or the slow refresh tries again */
  }
}

function start() {
  if (!KIOSK || !settings.group || !$("kiosk-compliance")) return;
  const soon = rates.throttled(refresh, THROTTLE_MS);
  state.onChange((change) => {
    if (change.totals || (change.changed && change.changed.size)) soon();
  });
  setInterval(refresh, REFRESH_MS);
  refresh();
}

export { start };

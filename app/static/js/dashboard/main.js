/* Dashboard entry point (index.html: desktop, group view and kiosk): wires the figures (shared/state.js,
 * shared/live.js) to the views, which redraw once per frame through render.js. */
import { cards } from "./cards.js";
import { charts } from "./charts.js";
import { groups } from "./groups.js";
import { kiosk } from "./kiosk.js";
import { start as startKioskRate } from "./kioskrate.js";
import { start as startNotices } from "./notices.js";
import { panels } from "./panels.js";
import { drawViews, requestRender } from "./render.js";
import { $ } from "../shared/format.js";
import { live } from "../shared/live.js";
import { KIOSK } from "../shared/settings.js";
import { state } from "../shared/state.js";

const RELATIVE_REFRESH_MS = 15000;

function start() {
  startKioskRate();
  drawViews([panels, groups, KIOSK ? kiosk : cards]);
  state.onChange(requestRender);
  groups.start();
  cards.start();
  kiosk.start();
  charts.start();
  const notice = $("reload-notice");
  if (notice) notice.addEventListener("click", () => window.location.reload());
  live.start();
  startNotices();
  setInterval(() => requestRender({ tick: true, full: true }), RELATIVE_REFRESH_MS); // "seen 3 min ago" moves
}

start();

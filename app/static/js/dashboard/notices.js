/* Problems of the server itself, above the dispensers that need attention: a database that refuses writes (a full
 * disk), a notification target failing for 15 minutes. Asked every 30 s (GET api/notices), not pushed. */
import { $, el, fill, fmt } from "../shared/format.js";
import { live } from "../shared/live.js";
import { S } from "../shared/settings.js";

const EVERY_MS = 30000;

function text(notice) {
  if (notice.kind === "storage") return fill(S.notice_storage || "{error}", { error: notice.error });
  return fill(S.notice_notify || "{target}", {
    target: notice.target, since: fmt.dateTime.format(new Date(notice.since)),
  });
}

async function refresh() {
  const list = $("server-notices");
  if (!list) return;
  try {
    const resp = await live.fetch("api/notices", { cache: "no-store" });
    if (!resp.ok) return;
    const body = await resp.json();
    list.replaceChildren(...(body.notices || []).map((n) => el("li", "server-notice notice-" + n.kind, text(n))));
    list.hidden = !list.children.length;
  } catch (err) {
    /* offline: the connection chip says so; the next round asks again */
  }
}

export function start() {
  refresh();
  setInterval(refresh, EVERY_MS);
}

/* Getting the figures: initial GET, Socket.IO (`donnees_delta`, plus `donnees_utilisation` at connection),
 * the poll every `poll_ms` (always on; `?since=SEQ` once the server numbers its changes), the connection indicator and the
 * version check that reloads a kiosk when the server comes back with new files. */
import { $, fill, setText } from "./format.js";
import { KIOSK, S, settings } from "./settings.js";
import { state } from "./state.js";
import { io } from "./vendor.js";

const FETCH_TIMEOUT_MS = 4000;
const RELOAD_GUARD_MS = 60000;
const GROUP = settings.group || null;

const live = {
  etag: null,
  pollOk: false,
  polling: false,
  needFull: false, // a gap was seen while a poll was running: re-fetch the whole payload after it
  socket: null,
  everConnected: false,
  joined: !GROUP, // in a group view, deltas count only once the server has put us in the group's room
  deltas: false, // the server sends `donnees_delta`: the periodic full `donnees_utilisation` is ignored
  acceptFull: true, // the `donnees_utilisation` sent at connection is always taken
  refetches: 0,
};

const url = (path) => new URL(path, window.location.href).toString();

async function fetchWithTimeout(path, options) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    return await fetch(url(path), Object.assign({ signal: controller.signal, credentials: "same-origin" }, options));
  } finally {
    clearTimeout(timer);
  }
}

function dataPath(since) {
  const query = new URLSearchParams();
  if (GROUP) query.set("group", GROUP);
  if (since !== null && since !== undefined) query.set("since", String(since));
  const text = query.toString();
  return "obtenir_donnees_utilisation" + (text ? "?" + text : "");
}

function takeDelta(delta) {
  if (state.applyDelta(delta) === "gap") refetch();
}

/** GET the figures: `?since=SEQ` (a delta or 304) when the figures carry a seq, else the whole payload with
 * If-None-Match. An answer without `base` is a whole payload (a server without deltas). */
async function poll(full) {
  if (live.polling) {
    if (full) live.needFull = true;
    return;
  }
  live.polling = true;
  const wasOk = live.pollOk;
  try {
    const since = full ? null : state.seq;
    const headers = since === null && live.etag ? { "If-None-Match": live.etag } : {};
    const resp = await fetchWithTimeout(dataPath(since), { headers: headers, cache: "no-store" });
    if (resp.status === 200) {
      const body = await resp.json();
      if (body && typeof body.base === "number") {
        takeDelta(body);
      } else {
        if (since === null) live.etag = resp.headers.get("ETag");
        state.applyFull(body);
      }
    } else if (resp.status !== 304) {
      throw new Error("HTTP " + resp.status);
    }
    live.pollOk = true;
    if (!wasOk && live.everConnected) checkVersion();
  } catch (err) {
    live.pollOk = false;
  } finally {
    live.polling = false;
    updateConnection();
    if (live.needFull) {
      live.needFull = false;
      poll(true);
    }
  }
}

/** A sequence number was missed: the whole payload again, then the deltas continue from its seq. */
function refetch() {
  live.refetches += 1;
  document.documentElement.dataset.refetches = String(live.refetches);
  poll(true);
  // A gap may come from a config reload: the group tree this page was built with may be gone (a kiosk reloads).
  if (live.everConnected) checkVersion();
}

function onFull(payload) {
  if (GROUP) return; // the connection payload covers every dispenser; the group view re-fetches its own
  if (!live.acceptFull && live.deltas && payload && typeof payload.seq === "number") return;
  live.acceptFull = false;
  state.applyFull(payload);
}

function onDelta(delta) {
  live.deltas = true;
  if (!live.joined) return;
  takeDelta(delta);
}

function connectSocket() {
  if (typeof io !== "function") return;
  const socket = io({
    path: new URL("socket.io", window.location.href).pathname,
    transports: ["websocket", "polling"],
    tryAllTransports: true,
    reconnection: true,
    reconnectionDelay: 1000,
    reconnectionDelayMax: 5000,
    timeout: 8000,
    // A group's page GETs its group's figures once joined: the whole fleet's, sent at connection, would be dropped.
    auth: GROUP ? { figures: false } : {},
  });
  live.socket = socket;
  socket.on("connect", () => {
    live.everConnected = true;
    live.acceptFull = true;
    // Joining speaks the delta protocol: the server stops sending the full figures every second. In a group
    // view the acknowledgement comes once we are in the group's room: fetch from there, its deltas follow.
    if (GROUP) live.joined = false;
    socket.emit("join", { group: GROUP }, () => {
      if (GROUP) {
        live.joined = true;
        refetch();
      }
    });
    updateConnection();
    checkVersion();
  });
  socket.on("disconnect", () => {
    updateConnection();
    poll(); // find out at once whether the server is gone or only the websocket
  });
  socket.on("connect_error", updateConnection);
  socket.io.on("upgrade", updateConnection);
  socket.on("donnees_utilisation", onFull);
  socket.on("donnees_delta", onDelta);
}

function updateConnection() {
  const socketUp = !!(live.socket && live.socket.connected);
  const mode = socketUp ? "live" : live.pollOk ? "polling" : "offline";
  const node = $("connection-status");
  if (!node) return;
  if (node.dataset.state !== mode) node.dataset.state = mode;
  const engine = socketUp && live.socket.io.engine;
  node.dataset.transport = engine && engine.transport ? engine.transport.name : "";
  setText(node.querySelector(".connection-label"), fill(S["state_" + mode], { s: settings.poll_ms / 1000 }));
  document.documentElement.classList.toggle("is-disconnected", mode === "offline");
  const banner = $("stale-banner");
  if (banner) banner.hidden = mode !== "offline" || !state.payload;
}

async function checkVersion() {
  try {
    const resp = await fetchWithTimeout("api/version", { cache: "no-store" });
    if (!resp.ok) return;
    const body = await resp.json();
    if (!body.version || body.version === settings.version) return;
    if (KIOSK) {
      const last = Number(window.sessionStorage.getItem("dashboard-reloaded-at") || 0);
      if (Date.now() - last < RELOAD_GUARD_MS) return;
      window.sessionStorage.setItem("dashboard-reloaded-at", String(Date.now()));
      window.location.reload();
    } else if ($("reload-notice")) {
      $("reload-notice").hidden = false;
    }
  } catch (err) {
    /* the next reconnection will ask again */
  }
}

/** Initial GET, Socket.IO, then the poll every `poll_ms` (always on, even while the websocket is up). */
function start() {
  poll(true);
  connectSocket();
  setInterval(() => poll(false), settings.poll_ms);
}

const liveApi = {
  start: start, fetch: fetchWithTimeout, url: url, poll: poll, refetch: refetch,
  socketUp: () => !!(live.socket && live.socket.connected),
};

export { liveApi as live };

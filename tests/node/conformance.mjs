// The realtime contract of README.md ("Socket.IO: donnees_utilisation and donnees_delta"), followed by Node's
// reference client (socket.io-client 4.8, pinned in package-lock.json) as an integration written in JavaScript
// would follow it. Driven by tests/process/test_node_client.py.
//
//   node conformance.mjs URL GROUP
//
// Two clients: the whole fleet (join {group: null}) and GROUP. Each keeps its state from the GET, then joins with
// `since` (the seq it holds) and applies every `donnees_delta` by `base`/`seq`, re-reading the GET when one was
// missed. Commands, one per line on stdin: `drop` (each client drops its next delta on purpose), `kill` (each
// client's transport is cut under it; the client reconnects after 2.5 s and joins again with `since`), `check`
// (each client waits until `?since=SEQ` answers 304, then compares its state with a fresh GET field by field),
// `quit`. Every event is one JSON line on stdout.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, groupArg] = process.argv.slice(2);
const CHECK_TIMEOUT_MS = 20000;
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function dataUrl(group, since) {
  const query = new URLSearchParams();
  if (group !== null) query.set("group", group);
  if (since !== undefined) query.set("since", String(since));
  const text = query.toString();
  return `${url}/obtenir_donnees_utilisation${text ? "?" + text : ""}`;
}

async function getJson(group) {
  const resp = await fetch(dataUrl(group));
  if (resp.status !== 200) throw new Error(`GET ${resp.status}`);
  return resp.json();
}

/** A payload as comparable state: the top-level values, dispensers and groups by id. */
function stateOf(payload) {
  const { dispensers, groups, ...top } = payload;
  return { top, dispensers: new Map(dispensers.map((d) => [d.id, d])), groups: new Map(groups.map((g) => [g.id, g])) };
}

/** Every difference between two states, as "where: ours != theirs" lines (seq left to the caller). */
function differences(ours, fresh) {
  const out = [];
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  for (const key of new Set([...Object.keys(ours.top), ...Object.keys(fresh.top)])) {
    if (key !== "seq" && !same(ours.top[key], fresh.top[key])) {
      out.push(`${key}: ${JSON.stringify(ours.top[key])} != ${JSON.stringify(fresh.top[key])}`);
    }
  }
  for (const kind of ["dispensers", "groups"]) {
    for (const id of new Set([...ours[kind].keys(), ...fresh[kind].keys()])) {
      const a = ours[kind].get(id) || {};
      const b = fresh[kind].get(id) || {};
      if (!ours[kind].has(id) || !fresh[kind].has(id)) out.push(`${kind}.${id}: present ${ours[kind].has(id)} != ${fresh[kind].has(id)}`);
      for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (!same(a[field], b[field])) out.push(`${kind}.${id}.${field}: ${JSON.stringify(a[field])} != ${JSON.stringify(b[field])}`);
      }
    }
  }
  return out;
}

class Client {
  constructor(name, group) {
    this.name = name;
    this.group = group;
    this.state = null;
    this.work = Promise.resolve(); // deltas, acknowledgements and refetches, one at a time, in arrival order
    this.counts = { applied: 0, ignored: 0, refetches: 0, dropped: 0, joins: 0, join_deltas: 0 };
    this.dropNext = false;
    this.joining = false;
    this.transports = [];
  }

  serial(task) {
    this.work = this.work.then(task).catch((err) => say({ event: "error", client: this.name, error: String(err) }));
    return this.work;
  }

  async refetch() {
    this.state = stateOf(await getJson(this.group));
  }

  /** README: ignore when seq <= ours, apply when base <= ours < seq, re-read the GET when base > ours. */
  async apply(delta) {
    const held = this.state.top.seq;
    if (delta.seq <= held) {
      this.counts.ignored += 1;
      return;
    }
    if (delta.base > held) {
      this.counts.refetches += 1;
      await this.refetch();
      return;
    }
    for (const entry of delta.dispensers) this.state.dispensers.set(entry.id, entry);
    for (const id of delta.removed) this.state.dispensers.delete(id);
    for (const group of delta.groups) this.state.groups.set(group.id, group);
    for (const key of ["seq", "gel_used", "hands_detected", "entries", "updated_at"]) {
      if (key in delta) this.state.top[key] = delta[key];
    }
    if (delta.alerts_added || delta.alerts_removed) { // what was raised and resolved, never the whole list
      const key = (a) => `${a.dispenser}\u0000${a.kind}`;
      const moved = new Set([...(delta.alerts_removed || []), ...(delta.alerts_added || [])].map(key));
      const order = [...this.state.dispensers.keys()];
      const kinds = ["offline", "low", "no_use"];
      const rank = (a) => [kinds.indexOf(a.kind), order.includes(a.dispenser) ? order.indexOf(a.dispenser) : 1e9];
      this.state.top.alerts = this.state.top.alerts.filter((a) => !moved.has(key(a)))
        .concat(delta.alerts_added || [])
        .sort((a, b) => rank(a)[0] - rank(b)[0] || rank(a)[1] - rank(b)[1]);
    }
    this.counts.applied += 1;
  }

  onDelta(delta) {
    if (this.dropNext) { // a frame lost on the way: the next delta shows the gap
      this.dropNext = false;
      this.counts.dropped += 1;
      say({ event: "dropped", client: this.name, seq: delta.seq });
      return;
    }
    if (this.joining) this.counts.join_deltas += 1;
    this.serial(() => this.apply(delta));
  }

  /** Join with the seq held: what was missed comes first as a delta, then the acknowledgement with the server's seq. */
  join() {
    this.joining = true;
    const since = this.state.top.seq;
    this.socket.emit("join", { group: this.group, since }, (ack) => this.serial(async () => {
      this.joining = false;
      if (!ack || ack.error || ack.group !== this.group) throw new Error(`join refused: ${JSON.stringify(ack)}`);
      if (typeof ack.seq !== "number") throw new Error(`join acknowledged without seq: ${JSON.stringify(ack)}`);
      if (ack.seq < this.state.top.seq) { // the server does not know our seq (its database was replaced)
        this.counts.refetches += 1;
        await this.refetch();
      }
      this.counts.joins += 1;
      say({ event: "joined", client: this.name, since, ack, seq: this.state.top.seq, transport: this.transport() });
    }));
  }

  transport() {
    const engine = this.socket.io.engine;
    return engine && engine.transport ? engine.transport.name : null;
  }

  async start() {
    await this.refetch();
    this.socket = io(url, {
      transports: ["polling", "websocket"], // polling first, then the upgrade (the browser default order)
      upgrade: true,
      reconnectionDelay: 2500, // a 2.5 s disconnection
      randomizationFactor: 0,
    });
    this.socket.io.on("open", () => {
      const engine = this.socket.io.engine;
      this.transports.push(engine.transport.name);
      engine.on("upgrade", (transport) => {
        this.transports.push(transport.name);
        say({ event: "upgraded", client: this.name, transports: this.transports, transport: this.transport() });
      });
    });
    this.socket.on("connect", () => this.join());
    this.socket.on("disconnect", (reason) => say({ event: "disconnected", client: this.name, reason }));
    this.socket.on("donnees_delta", (delta) => this.onDelta(delta));
  }

  /** Cut the transport under the client, as a network failure does (no close handshake). */
  kill() {
    const transport = this.socket.io.engine.transport;
    if (transport.ws && transport.ws._socket) transport.ws._socket.destroy();
    else this.socket.io.engine.close();
  }

  /** Caught up (`?since=SEQ` answers 304), then equal to a fresh GET field by field; retried until the timeout. */
  async check() {
    const deadline = Date.now() + CHECK_TIMEOUT_MS;
    let last = { differences: ["never caught up"] };
    while (Date.now() < deadline) {
      await this.work;
      const held = this.state.top.seq;
      const resp = await fetch(dataUrl(this.group, held));
      if (resp.status === 304) {
        const fresh = stateOf(await getJson(this.group));
        last = { held, fresh_seq: fresh.top.seq, differences: differences(this.state, fresh) };
        if (held > fresh.top.seq) last.differences.push(`seq ${held} > ${fresh.top.seq}`);
        if (last.differences.length === 0) break;
      } else {
        await resp.arrayBuffer();
        last = { held, differences: [`?since=${held} answered ${resp.status}`] };
      }
      await sleep(50);
    }
    say({ event: "checked", client: this.name, ok: last.differences.length === 0, ...last, counts: { ...this.counts },
      transport: this.transport(), dispensers: this.state.dispensers.size });
  }
}

const clients = [new Client("fleet", null), new Client("group", groupArg)];
await Promise.all(clients.map((c) => c.start()));

const commands = {
  drop: () => clients.forEach((c) => { c.dropNext = true; }),
  kill: () => clients.forEach((c) => c.kill()),
  check: () => Promise.all(clients.map((c) => c.check())),
  quit: () => {
    clients.forEach((c) => c.socket.disconnect());
    say({ event: "bye" });
    process.exit(0);
  },
};
let queue = Promise.resolve();
createInterface({ input: process.stdin }).on("line", (line) => {
  const command = commands[line.trim()];
  if (!command) return say({ event: "error", error: `unknown command ${line}` });
  queue = queue.then(command).then(() => say({ event: "done", command: line.trim() }));
});

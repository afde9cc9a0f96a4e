/* The audit journal (`/journal?group=ID`): who changed what, when, from where, before and after, newest first.
 * Read with a person's token (admin, or hygiene within their groups), kept as the round's; CSV through the same
 * token (a download the page makes from the answer, since a link cannot carry a Bearer header). */
import { $, dayKey, el, fill, fmt, setText, shiftDay } from "../shared/format.js";
import { S, settings } from "../shared/settings.js";
import { showSignedIn } from "../shared/signedin.js";
import { staffToken } from "../shared/token.js";

const GROUP = settings.group || null;
const t = (key, values) => fill(S[key] || key, values || {});

function showTokenForm(show, refused) {
  $("token-form").hidden = !show;
  $("token-error").hidden = !refused;
  $("forget-token").hidden = show;
  if (show) $("token").focus();
  showSignedIn("signed-in");
}

function query() {
  const params = new URLSearchParams({ from: $("journal-from").value, to: $("journal-to").value });
  if (GROUP) params.set("group", GROUP);
  if ($("journal-who").value.trim()) params.set("who", $("journal-who").value.trim());
  if ($("journal-action").value) params.set("action", $("journal-action").value);
  return params.toString();
}

/** GET the audit (JSON or CSV) with the kept token; null after a refusal (the token form is shown again). */
async function ask(path) {
  const token = staffToken.get();
  if (!token) {
    showTokenForm(true, false);
    return null;
  }
  setText($("journal-status"), t("journal_loading"));
  const resp = await fetch(new URL(path + "?" + query(), window.location.href).toString(), {
    headers: { Authorization: "Bearer " + token }, cache: "no-store", credentials: "same-origin",
  });
  if (resp.status === 401) {
    staffToken.forget();
    showTokenForm(true, true);
    setText($("journal-status"), t("token_refused"));
    return null;
  }
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    setText($("journal-status"), t("journal_refused", { error: body.error || "HTTP " + resp.status }));
    return null;
  }
  return resp;
}

/** "12 → 14" per date for the census, "live → test" for a mode, the level for a refill. */
function changeText(entry) {
  const d = entry.detail || {};
  if (d.days) return d.days.map((x) => x.date + " : " + (x.before ?? "—") + " → " + x.after).join(", ");
  if (d.before !== undefined && d.after !== undefined) {
    const show = (v) => (v && typeof v === "object" ? Object.values(v).join(" ") : String(v));
    return show(d.before) + " → " + show(d.after);
  }
  if (d.status) return d.status + " " + (d.method || "") + " " + (d.route || "");
  return Object.entries(d).filter(([, v]) => Array.isArray(v) && v.length)
    .map(([k, v]) => k + " : " + v.join(", ")).join(" · ");
}

function row(entry) {
  const tr = el("tr");
  tr.dataset.action = entry.action;
  const action = S["action_" + entry.action.replace(".", "_")] || entry.action;
  const cells = [fmt.dateTime.format(new Date(entry.at)), entry.who, action, entry.target || "",
    changeText(entry), entry.address || ""];
  cells.forEach((text, i) => tr.appendChild(el("td", i === 4 ? "change" : "", text)));
  return tr;
}

async function show(event) {
  if (event) event.preventDefault();
  const resp = await ask("api/audit");
  if (!resp) return;
  const body = await resp.json();
  const rows = $("journal-rows");
  rows.replaceChildren(...body.entries.map(row));
  $("journal-table").hidden = !body.entries.length;
  setText($("journal-status"), body.entries.length ? t("journal_count", { n: body.entries.length })
    : t("journal_empty"));
}

async function downloadCsv() {
  const resp = await ask("api/audit.csv");
  if (!resp) return;
  const link = el("a");
  link.href = URL.createObjectURL(await resp.blob());
  link.download = "audit-" + $("journal-from").value + "-" + $("journal-to").value + ".csv";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setText($("journal-status"), "");
}

function start() {
  const today = dayKey(new Date());
  $("journal-to").value = today;
  $("journal-from").value = shiftDay(today, -30);
  $("journal-filters").addEventListener("submit", show);
  $("journal-csv").addEventListener("click", downloadCsv);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    staffToken.set($("token").value.trim());
    $("token").value = "";
    showTokenForm(false, false);
    show();
  });
  $("forget-token").addEventListener("click", () => {
    staffToken.forget();
    $("journal-rows").replaceChildren();
    $("journal-table").hidden = true;
    showTokenForm(true, false);
  });
  showTokenForm(!staffToken.get(), false);
  if (staffToken.get()) show();
}

start();

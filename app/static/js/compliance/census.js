/* The census form of the compliance view: patients of the group on a date (PUT /api/groups/<id>/census/<date>) and
 * a CSV import (POST /api/groups/<id>/census.csv, all or nothing, the server's error names the line). The staff
 * token (admin or maintenance) is typed once and kept by token.js; a refused one is forgotten and asked again. */
import { rates as R } from "./rates.js";
import { $, fmt, setText } from "../shared/format.js";
import { settings } from "../shared/settings.js";
import { showSignedIn } from "../shared/signedin.js";
import { staffToken } from "../shared/token.js";

const GROUP = settings.group;

function status(text, kind) {
  const node = $("census-status");
  setText(node, text);
  node.dataset.kind = kind || "";
}

function showTokenRow(show) {
  $("census-token-row").hidden = !show;
  $("census-token").required = show;
  $("census-forget").hidden = show;
  showSignedIn("census-signed-in");
}

/** The token to send: the one kept, else the one just typed (kept from now on). */
function tokenToSend() {
  const typed = $("census-token").value.trim();
  if (typed) {
    staffToken.set(typed);
    $("census-token").value = "";
    showTokenRow(false);
  }
  return staffToken.get();
}

/** Send a census request; true when the server took it (the figures are refreshed at once). */
async function send(path, init, done) {
  const token = tokenToSend();
  if (!token) {
    showTokenRow(true);
    $("census-token").focus();
    return false;
  }
  init.headers = Object.assign({ Authorization: "Bearer " + token }, init.headers);
  status(R.t("census_sending"), "busy");
  let resp;
  try {
    resp = await fetch(new URL(path, window.location.href).toString(),
      Object.assign({ cache: "no-store", credentials: "same-origin" }, init));
  } catch (err) {
    status(R.t("census_failed"), "error");
    return false;
  }
  const body = await resp.json().catch(() => ({}));
  if (resp.status === 401 || resp.status === 403) {
    staffToken.forget();
    showTokenRow(true);
    status(R.t("token_refused"), "error");
    return false;
  }
  if (!resp.ok) {
    status(R.t("census_refused", { error: body.error || "HTTP " + resp.status }), "error");
    return false;
  }
  status(done(body), "ok");
  onSaved();
  return true;
}

function groupPath(suffix) {
  return "api/groups/" + encodeURIComponent(GROUP) + suffix;
}

async function save(event) {
  event.preventDefault();
  const date = $("census-date").value;
  const patients = Number($("census-patients").value);
  await send(groupPath("/census/" + encodeURIComponent(date)), {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ patients: patients }),
  }, (body) => R.t("census_saved", { n: fmt.int.format(body.patients), date: R.longDayText(body.date) }));
}

async function importFile() {
  const input = $("census-file");
  const file = input.files && input.files[0];
  if (!file) {
    status(R.t("census_no_file"), "error");
    return;
  }
  const text = await file.text();
  const ok = await send(groupPath("/census.csv"), {
    method: "POST", headers: { "Content-Type": "text/csv" }, body: text,
  }, (body) => R.t("census_imported", { n: body.imported, from: R.dayMonthText(body.from), to: R.dayMonthText(body.to) }));
  if (ok) input.value = "";
}

let onSaved = () => {}; // the compliance view's refresh, given by its entry (compliance/main.js)

/** Wire the form; `afterSave` runs once a census is saved or imported. */
function start(afterSave) {
  onSaved = afterSave;
  const form = $("census-form");
  if (!form || !GROUP) return;
  const dateInput = $("census-date");
  if (!dateInput.value) dateInput.value = settings.today;
  form.addEventListener("submit", save);
  $("census-import").addEventListener("click", importFile);
  $("census-forget").addEventListener("click", () => {
    staffToken.forget();
    showTokenRow(true);
    status("", "");
  });
  showTokenRow(!staffToken.get());
}

export { start };

/* The census form of the compliance view: patients of the group on a date (PUT /api/groups/<id>/census/<date>) and
 * a CSV import (POST /api/groups/<id>/census.csv, all or nothing, the server's error names the line). The staff
 * token (admin or maintenance) is typed once and kept by token.js; a refused one is forgotten and asked again. */
(function (G) {
  "use strict";

  const R = G.rates;
  const GROUP = G.settings.group;

  function status(text, kind) {
    const node = G.$("census-status");
    G.setText(node, text);
    node.dataset.kind = kind || "";
  }

  function showTokenRow(show) {
    G.$("census-token-row").hidden = !show;
    G.$("census-token").required = show;
    G.$("census-forget").hidden = show;
  }

  /** The token to send: the one kept, else the one just typed (kept from now on). */
  function tokenToSend() {
    const typed = G.$("census-token").value.trim();
    if (typed) {
      G.staffToken.set(typed);
      G.$("census-token").value = "";
      showTokenRow(false);
    }
    return G.staffToken.get();
  }

  /** Send a census request; true when the server took it (the figures are refreshed at once). */
  async function send(path, init, done) {
    const token = tokenToSend();
    if (!token) {
      showTokenRow(true);
      G.$("census-token").focus();
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
      G.staffToken.forget();
      showTokenRow(true);
      status(R.t("token_refused"), "error");
      return false;
    }
    if (!resp.ok) {
      status(R.t("census_refused", { error: body.error || "HTTP " + resp.status }), "error");
      return false;
    }
    status(done(body), "ok");
    if (G.compliance) G.compliance.refresh();
    return true;
  }

  function groupPath(suffix) {
    return "api/groups/" + encodeURIComponent(GROUP) + suffix;
  }

  async function save(event) {
    event.preventDefault();
    const date = G.$("census-date").value;
    const patients = Number(G.$("census-patients").value);
    await send(groupPath("/census/" + encodeURIComponent(date)), {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ patients: patients }),
    }, (body) => R.t("census_saved", { n: G.fmt.int.format(body.patients), date: R.longDayText(body.date) }));
  }

  async function importFile() {
    const input = G.$("census-file");
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

  function start() {
    const form = G.$("census-form");
    if (!form || !GROUP) return;
    const dateInput = G.$("census-date");
    if (!dateInput.value) dateInput.value = G.settings.today;
    form.addEventListener("submit", save);
    G.$("census-import").addEventListener("click", importFile);
    G.$("census-forget").addEventListener("click", () => {
      G.staffToken.forget();
      showTokenRow(true);
      status("", "");
    });
    showTokenRow(!G.staffToken.get());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.Gel = window.Gel || {});

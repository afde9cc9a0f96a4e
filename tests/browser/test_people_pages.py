"""The pages with a person's token: "Signed in as" on the round, who refilled, and the audit journal."""

from __future__ import annotations

import hashlib

import requests

from tests.helpers.auth import bearer
from tests.helpers.browser import pump_until, screenshot
from tests.helpers.config import TOKENS
from tests.helpers.wards import ward_config_text

MARC = "token-of-marc-maintenance-1"
NADIA = "token-of-nadia-hygiene-0002"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def people() -> str:
    return "".join(f'\n[[server.staff]]\nid = "{i}"\nname = "{name}"\nrole = "{role}"\n'
                   f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
                   for i, name, role, token in (("marc", "Marc Dupont", "maintenance", MARC),
                                                ("nadia", "Nadia Benali", "hygiene", NADIA)))


def serve(server_factory, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(ward_config_text(database=f"sqlite:///{tmp_path / 'u.db'}", async_mode="eventlet") + people(),
                    encoding="utf-8")
    return server_factory(config=path)


def test_the_round_says_who_is_signed_in_and_who_refilled(server_factory, tmp_path, open_page) -> None:
    server = serve(server_factory, tmp_path)
    requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 250}, headers=bearer(TOKENS["entree"]),
                  timeout=10)
    page, rec = open_page(server.url + "/tournee", wait_state="live", **PHONE)
    page.wait_for_selector(".refill-item[data-id=entree]")
    assert page.is_hidden("#signed-in")
    page.fill("#token", MARC)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#signed-in", state="visible")
    assert page.text_content("#signed-in") == "Connecté : Marc Dupont (entretien)"
    page.click(".refill-item[data-id=entree] .refill-button")
    page.wait_for_selector(".refill-item.is-refilled[data-id=entree]")  # the push confirmed it
    status = page.text_content(".refill-item[data-id=entree] .refill-status")
    assert status.startswith("Rechargé par Marc Dupont à "), status
    assert status.endswith("Remplissage confirmé : 100\u00a0%"), status
    assert requests.get(server.url + "/api/dispensers/entree/refills", timeout=5).json()["refills"][0]["by"] == "marc"
    screenshot(page, "tournee-signed-in-phone")
    assert [e for e in rec.errors if "401" not in e] == []


def test_the_round_keeps_who_refilled_when_the_push_comes_before_the_answer(server_factory, tmp_path,
                                                                            open_page) -> None:
    server = serve(server_factory, tmp_path)
    requests.post(server.url + "/mettre_a_jour_donnees", json={"gel_used": 250}, headers=bearer(TOKENS["entree"]),
                  timeout=10)
    page, rec = open_page(server.url + "/tournee", wait_state="live", **PHONE)
    page.wait_for_selector(".refill-item[data-id=entree]")
    page.fill("#token", MARC)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#signed-in", state="visible")
    held = []

    def hold(route) -> None:
        held.append((route, route.fetch()))  # the server records the refill and pushes; the answer waits here

    page.route("**/api/dispensers/entree/refill", hold)
    page.click(".refill-item[data-id=entree] .refill-button")
    page.wait_for_selector(".refill-item.is-refilled[data-id=entree]")  # the push, before the page has its answer
    pump_until(page, lambda: held, "the route's fetch of the answer")  # the push may beat its return
    route, answer = held[0]
    route.fulfill(response=answer)
    page.wait_for_function("""() => document.querySelector('.refill-item[data-id=entree] .refill-status')
        .textContent.startsWith('Rechargé par Marc Dupont')""")
    status = page.text_content(".refill-item[data-id=entree] .refill-status")
    assert status.endswith("Remplissage confirmé : 100\u00a0%"), status
    assert page.is_enabled(".refill-item[data-id=entree] .refill-button")
    assert [e for e in rec.errors if "401" not in e] == []


def test_the_journal_lists_the_changes_for_hygiene_and_refuses_maintenance(server_factory, tmp_path,
                                                                            open_page) -> None:
    server = serve(server_factory, tmp_path)
    requests.put(server.url + "/api/groups/ward-a/census/2026-03-02", json={"patients": 12}, headers=bearer(NADIA),
                 timeout=10)
    requests.put(server.url + "/api/groups/ward-a/census/2026-03-02", json={"patients": 14}, headers=bearer(NADIA),
                 timeout=10)
    requests.post(server.url + "/api/dispensers/b12/mode", json={"mode": "test"}, headers=bearer(MARC), timeout=10)
    page, rec = open_page(server.url + "/journal", viewport={"width": 1280, "height": 800})
    page.wait_for_selector("#token-form", state="visible")
    page.fill("#token", MARC)
    page.click("#token-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('journal-status').textContent.startsWith('Refusé')")
    page.fill("#journal-who", "")
    page.click("#forget-token")
    page.fill("#token", NADIA)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#journal-rows tr")
    rows = page.eval_on_selector_all("#journal-rows tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    assert [r[1:4] for r in rows] == [["marc", "Mode", "b12"], ["nadia", "Recensement", "ward-a"],
                                      ["nadia", "Recensement", "ward-a"]]
    assert rows[0][4] == "live → test" and rows[1][4] == "2026-03-02 : 12 → 14"
    assert page.text_content("#signed-in") == "Connecté : Nadia Benali (hygiène)"
    with page.expect_download() as download:
        page.click("#journal-csv")
    assert download.value.suggested_filename.startswith("audit-")
    screenshot(page, "journal-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= innerWidth")
    screenshot(page, "journal-phone")
    assert [e for e in rec.errors if "403" not in e and "401" not in e] == []


def test_the_report_says_who_entered_the_census(server_factory, tmp_path, open_page) -> None:
    from datetime import date, timedelta

    server = serve(server_factory, tmp_path)
    monday = date.today() - timedelta(days=date.today().weekday())
    requests.put(f"{server.url}/api/groups/ward-a/census/{monday}", json={"patients": 12}, headers=bearer(NADIA),
                 timeout=10)
    report = requests.get(server.url + "/api/report?group=ward-a", timeout=10).json()
    assert [(c["date"], c["patients"], c["by"]) for c in report["census"]] == [(monday.isoformat(), 12, "nadia")]
    page, rec = open_page(server.url + "/rapport?group=ward-a")
    page.wait_for_selector("#report-census-by", state="visible")
    assert page.text_content("#report-census-by").startswith("Recensement saisi par nadia (1 j, dernier le ")
    assert rec.errors == []


def test_the_compliance_page_says_who_entered_a_days_census(server_factory, tmp_path, open_page) -> None:
    from datetime import date

    server = serve(server_factory, tmp_path)
    today = date.today().isoformat()
    requests.put(f"{server.url}/api/groups/ward-a/census/{today}", json={"patients": 9}, headers=bearer(NADIA),
                 timeout=10)
    rows = requests.get(f"{server.url}/api/compliance?group=ward-a&bucket=day", timeout=10).json()["rows"]
    assert rows[-1]["census_by"] == "nadia" and rows[-1]["census_at"].endswith("Z")
    page, rec = open_page(server.url + "/conformite?group=ward-a")
    cell = f"#compliance-days tr[data-start='{today}'] td.col-patients"
    page.wait_for_selector(cell)
    assert page.get_attribute(cell, "title").startswith("Saisi par nadia le ")
    assert rec.errors == []

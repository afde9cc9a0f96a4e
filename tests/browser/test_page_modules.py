"""Every page in a real Chromium runs one native ES module entry, hangs nothing on window and logs no error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.servers import ServerProcess
from tests.helpers.browser import post_use
from tests.helpers.wards import ward_config_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Each page, and what its entry module does once it has run (the template alone never does it).
LIVE = "document.getElementById('connection-status').dataset.state === 'live'"
PAGES = {
    "/": LIVE + " && document.querySelectorAll('#dispenser-list .dispenser').length === 3",
    "/?group=ward-a": LIVE + " && document.querySelectorAll('#dispenser-list .dispenser').length === 2",
    "/?kiosk=1": LIVE + " && document.querySelectorAll('#dispenser-list .dispenser').length === 3",
    "/?kiosk=1&group=ward-a": LIVE + " && document.querySelectorAll('#dispenser-list .dispenser').length === 2",
    "/tournee": LIVE,
    "/conformite?group=ward-a": LIVE + " && document.getElementById('compliance-weeks').rows.length > 1",
    "/rapport?group=ward-a": "document.getElementById('report-generated').textContent !== ''",
    "/journal": "!document.getElementById('token-form').hidden && document.getElementById('journal-from').value",
}
# Names a page's own scripts could have added to window (the vendored libraries define Chart and io).
OWN_GLOBALS = """() => {
  const blank = document.createElement('iframe');
  document.body.appendChild(blank);
  const known = new Set(Object.getOwnPropertyNames(blank.contentWindow));
  blank.remove();
  return Object.getOwnPropertyNames(window).filter((n) => !known.has(n) && !['Chart', 'io'].includes(n));
}"""


@pytest.fixture(scope="module")
def ward_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the wards config and one use per dispenser."""
    config: Path = tmp_path_factory.mktemp("modules") / "config.toml"
    config.write_text(ward_config_text(async_mode="eventlet"), encoding="utf-8")
    server = ServerProcess(config).start()
    try:
        for dispenser in ("entree", "cafeteria", "b12"):
            post_use(server.url, dispenser=dispenser)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("path", PAGES)
def test_page_runs_one_module_entry_without_globals_or_errors(ward_server, open_page, path: str) -> None:
    page, rec = open_page(ward_server.url + path)
    page.wait_for_function("() => " + PAGES[path], timeout=15000)
    entries = page.eval_on_selector_all("script[type=module]", "(nodes) => nodes.map((n) => n.src)")
    assert len(entries) == 1 and entries[0].split("?")[0].endswith("/main.js"), entries
    assert page.eval_on_selector_all("script[src]:not([type=module])",
                                     "(nodes) => nodes.every((n) => n.src.includes('/static/vendor/'))")
    assert page.evaluate("() => typeof window.Gel") == "undefined"
    assert page.evaluate(OWN_GLOBALS) == []
    assert rec.errors == []

"""How the tests and the benchmarks launch Debian's headless Chromium."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# No sandbox (containers without user namespaces), no GPU, nothing that phones home or updates during a run.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]

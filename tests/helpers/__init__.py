"""Test-only code that is not a fixture: auth headers, the test config, browser page recorders, rigs, wards, the
xdist scheduler. What bench shares with the tests (server processes, the zygote, Chromium) is in devkit/."""

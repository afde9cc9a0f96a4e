"""The pages in headless Debian Chromium (Playwright) against real server processes."""

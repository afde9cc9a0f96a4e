"""Under CI every test is mandatory: a missing service or browser fails instead of skipping."""

from __future__ import annotations

import os

import pytest

TRUTHY = {"true", "1", "yes", "on", "y"}


def on_ci(environ: dict[str, str] | None = None) -> bool:
    """Whether CI is set to one of the usual truthy values (true, 1, yes, on; any case)."""
    return (environ if environ is not None else os.environ).get("CI", "").strip().lower() in TRUTHY


def skip_or_fail(reason: str) -> None:
    """Skip with a reason, except under CI where every test is mandatory."""
    if on_ci():
        pytest.fail(f"mandatory under CI: {reason}")
    pytest.skip(reason)
